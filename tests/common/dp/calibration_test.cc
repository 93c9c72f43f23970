#include "fedattn/dp/calibration.h"

#include <cmath>
#include <tuple>

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
