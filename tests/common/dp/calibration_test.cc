#include "fedattn/dp/calibration.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace fedattn::dp {
namespace {

class CalibrationRoundTripTest
    : public ::testing::TestWithParam<std::tuple<double, double, int64_t, double>> {};

TEST_P(CalibrationRoundTripTest, RecoversNoiseMultiplier) {
  const auto [q, sigma, steps, delta] = GetParam();
  auto target = ComputeEpsilon(q, sigma, steps, delta);
  ASSERT_TRUE(target.ok()) << target.status();
  const CalibrationOptions options;
  auto cal = CalibrateNoiseMultiplier(target->epsilon, delta, q, steps, options);
  ASSERT_TRUE(cal.ok()) << cal.status();
  // The contract: ε(hi) <= target < ε(lo), hi - lo <= tol * hi.
  EXPECT_LE(cal->guarantee.epsilon, target->epsilon);
  EXPECT_LE(cal->noise_multiplier - cal->lower_bound,
            options.relative_tolerance * cal->noise_multiplier);
  EXPECT_GT(ComputeEpsilon(q, cal->lower_bound, steps, delta)->epsilon, target->epsilon);
  // ε is strictly decreasing in σ here, so σ comes back to within the tolerance.
  EXPECT_NEAR(cal->noise_multiplier, sigma, 2 * options.relative_tolerance * sigma);
  EXPECT_EQ(cal->guarantee.orders, DefaultRdpOrders());
  EXPECT_LT(cal->evaluations, 80);
}

INSTANTIATE_TEST_SUITE_P(Range, CalibrationRoundTripTest,
                         ::testing::Combine(::testing::Values(1e-4, 0.01, 0.3, 1.0),
                                            ::testing::Values(0.5, 1.1, 8.0),
                                            ::testing::Values(int64_t{100}, int64_t{100000}),
                                            ::testing::Values(1e-10, 1e-5)));

// The search (secant steps over a subset of orders, whole-grid checks at the ends) must keep the
// contract on any input in the documented range, for any target, and on other grids: targets
// that are not an ε of a round σ, and an unsorted custom grid.
TEST(CalibrationTest, ContractHoldsOnRandomInputs) {
  std::mt19937_64 engine(2024);
  auto uniform_log = [&](double lo, double hi) {
    return std::exp(std::uniform_real_distribution<double>(std::log(lo), std::log(hi))(engine));
  };
  CalibrationOptions unsorted;
  unsorted.accountant.orders = {32, 1.5, 8, 2, 64, 3.25, 16, 4, 256};
  for (int i = 0; i < 40; ++i) {
    const double q = std::min(1.0, uniform_log(1e-5, 1.5));
    const double sigma = uniform_log(0.4, 50);
    const auto steps = static_cast<int64_t>(uniform_log(1, 1e6));
    const double delta = uniform_log(1e-10, 1e-3);
    const CalibrationOptions options = i % 4 == 3 ? unsorted : CalibrationOptions();
    auto at_sigma = ComputeEpsilon(q, sigma, steps, delta, options.accountant);
    ASSERT_TRUE(at_sigma.ok()) << at_sigma.status();
    const double target = at_sigma->epsilon * (i % 2 ? 1.0 : 1.37);
    auto cal = CalibrateNoiseMultiplier(target, delta, q, steps, options);
    if (!cal.ok()) {
      // Only a target at the grid's floor may be refused.
      EXPECT_EQ(cal.status().code(), absl::StatusCode::kOutOfRange) << cal.status();
      continue;
    }
    const std::string where = absl::StrCat("q=", q, " sigma=", sigma, " T=", steps, " delta=", delta, " target=", target);
    auto at_hi = ComputeEpsilon(q, cal->noise_multiplier, steps, delta, options.accountant);
    ASSERT_TRUE(at_hi.ok());
    EXPECT_LE(at_hi->epsilon, target) << where;
    EXPECT_EQ(cal->guarantee.epsilon, at_hi->epsilon) << where;
    EXPECT_EQ(cal->guarantee.optimal_order, at_hi->optimal_order) << where;
    EXPECT_EQ(cal->guarantee.orders, options.accountant.orders) << where;
    if (cal->lower_bound > 0) {
      EXPECT_GT(ComputeEpsilon(q, cal->lower_bound, steps, delta, options.accountant)->epsilon, target) << where;
      EXPECT_LE(cal->noise_multiplier - cal->lower_bound, options.relative_tolerance * cal->noise_multiplier)
          << where;
    } else {
      EXPECT_EQ(cal->noise_multiplier, options.min_noise_multiplier) << where;
    }
    EXPECT_LT(cal->evaluations, 40) << where << " options " << (i % 4 == 3);
  }
}

TEST(CalibrationTest, PublishedConfiguration) {
  // N = 60000, batch 256, 60 epochs, δ = 1e-5: σ = 1.1 gives ε ≈ 2.5967 (see accountant_test),
  // so asking for ε = 2.6 must give σ just below 1.1.
  auto cal = CalibrateNoiseMultiplier(2.6, 1e-5, 256.0 / 60000.0, 14063);
  ASSERT_TRUE(cal.ok()) << cal.status();
  EXPECT_LT(cal->noise_multiplier, 1.1);
  EXPECT_GT(cal->noise_multiplier, 1.09);
  EXPECT_LE(cal->guarantee.epsilon, 2.6);
}

TEST(CalibrationTest, FloorIsTheLargestOrdersConversionCost) {
  auto floor = EpsilonFloor(DefaultRdpOrders(), 1e-5);
  ASSERT_TRUE(floor.ok());
  EXPECT_EQ(floor->optimal_order, 1024.0);
  EXPECT_NEAR(floor->epsilon,
              -(std::log(1e-5) + std::log(1024.0)) / 1023.0 + std::log(1023.0 / 1024.0), 1e-15);
  EXPECT_NEAR(floor->epsilon, 0.0035, 1e-4);
}

TEST(CalibrationTest, TargetBelowFloorIsInfeasible) {
  auto cal = CalibrateNoiseMultiplier(0.003, 1e-5, 0.01, 1000);
  EXPECT_EQ(cal.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_NE(cal.status().message().find("infeasible"), absl::string_view::npos)
      << cal.status();
  // The floor depends on the grid: a small grid has a much higher one.
  CalibrationOptions small;
  small.accountant.orders = {2, 4, 8};
  EXPECT_EQ(CalibrateNoiseMultiplier(0.5, 1e-5, 0.01, 1000, small).status().code(),
            absl::StatusCode::kOutOfRange);
}

TEST(CalibrationTest, TargetNeedingTooMuchNoiseIsAnError) {
  // Just above the floor: feasible in principle, but only with σ far above the cap.
  CalibrationOptions options;
  options.max_noise_multiplier = 50;
  auto cal = CalibrateNoiseMultiplier(0.0036, 1e-5, 0.5, 100000, options);
  EXPECT_EQ(cal.status().code(), absl::StatusCode::kOutOfRange) << cal.status();
}

TEST(CalibrationTest, GenerousTargetStopsAtMinimumNoise) {
  CalibrationOptions options;
  options.min_noise_multiplier = 0.25;
  auto cal = CalibrateNoiseMultiplier(1e6, 1e-5, 0.001, 1, options);
  ASSERT_TRUE(cal.ok()) << cal.status();
  EXPECT_EQ(cal->noise_multiplier, 0.25);
  EXPECT_EQ(cal->lower_bound, 0.0);
}

TEST(CalibrationTest, RejectsBadArguments) {
  EXPECT_EQ(CalibrateNoiseMultiplier(0.0, 1e-5, 0.01, 100).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CalibrateNoiseMultiplier(1.0, 1.0, 0.01, 100).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CalibrateNoiseMultiplier(1.0, 1e-5, 0.0, 100).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CalibrateNoiseMultiplier(1.0, 1e-5, 0.01, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  CalibrationOptions bad;
  bad.relative_tolerance = 0.0;
  EXPECT_EQ(CalibrateNoiseMultiplier(1.0, 1e-5, 0.01, 100, bad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fedattn::dp
