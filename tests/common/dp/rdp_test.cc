#include "fedattn/dp/rdp.h"

#include <cmath>
#include <tuple>

#include "gtest/gtest.h"

namespace fedattn::dp {
namespace {

double Rdp(double q, double sigma, double order) {
  auto rdp = SubsampledGaussianRdp(q, sigma, order);
  EXPECT_TRUE(rdp.ok()) << rdp.status();
  return rdp.ok() ? *rdp : std::nan("");
}

// Reference values: tests/common/dp/rdp_reference.py, 60-digit decimal arithmetic. Integer
// orders from the exact binomial sum (cross-checked there against quadrature to ~50 digits),
// fractional orders from trapezoidal quadrature of the defining integral — a method independent
// of the series evaluated here.
struct ReferenceCase {
  double q;
  double sigma;
  double order;
  double rdp;  // per step
};

constexpr ReferenceCase kIntegerCases[] = {
    {0.01, 1.0, 2, 1.71813422074547938143e-4},
    {0.01, 1.0, 32, 1.12462759370480688569e+1},
    {1e-6, 100.0, 2, 1.00005000166670819365e-16},
    {1e-6, 0.3, 8, 2.86552895210567058490e+1},
    {0.5, 0.3, 5, 2.69113438020778481970e+1},
    {0.999, 2.0, 16, 1.99895791131420617752e+0},
    {0.02, 0.8, 1024, 7.96084152925162744474e+2},
    {0.3, 5.0, 128, 1.36164752713165947976e+0},
};

constexpr ReferenceCase kFractionalCases[] = {
    {0.01, 1.0, 1.5, 1.27253743327449838806e-4},
    {0.01, 1.0, 10.9, 3.87611411300388887851e-1},
    {1e-6, 100.0, 2.5, 1.25006250214589351357e-16},
    {1e-6, 0.3, 3.3, 1.39334082572220366754e-2},
    {0.5, 0.3, 1.1, 2.91178189695595809950e+0},
    {0.5, 100.0, 1.1, 1.37502062475078855793e-5},
    {0.999, 2.0, 7.7, 9.61565669604303144745e-1},
    {256.0 / 60000.0, 1.1, 4.5, 5.36917234032047573816e-5},
    {0.1, 0.5, 9.9, 1.72386974808268523062e+1},
    {0.05, 3.0, 1.2, 1.75445142642932100225e-4},
};

class RdpIntegerReferenceTest : public ::testing::TestWithParam<ReferenceCase> {};

TEST_P(RdpIntegerReferenceTest, MatchesExactSum) {
  const ReferenceCase& c = GetParam();
  // The expm1 form keeps full relative precision even where A_α - 1 ~ 1e-16.
  EXPECT_NEAR(Rdp(c.q, c.sigma, c.order), c.rdp, 1e-11 * c.rdp)
      << "q=" << c.q << " sigma=" << c.sigma << " order=" << c.order;
}
INSTANTIATE_TEST_SUITE_P(Reference, RdpIntegerReferenceTest, ::testing::ValuesIn(kIntegerCases));

class RdpFractionalReferenceTest : public ::testing::TestWithParam<ReferenceCase> {};

TEST_P(RdpFractionalReferenceTest, MatchesQuadrature) {
  const ReferenceCase& c = GetParam();
  // The series is summed in doubles and truncated where Opacus truncates it (terms < e^-30):
  // ~1e-7 relative at worst in range (q = 0.5, σ = 100), plus ~1e-16 absolute in log A.
  const double tolerance = 5e-7 * c.rdp + 2e-15 / (c.order - 1.0);
  EXPECT_NEAR(Rdp(c.q, c.sigma, c.order), c.rdp, tolerance)
      << "q=" << c.q << " sigma=" << c.sigma << " order=" << c.order;
}
INSTANTIATE_TEST_SUITE_P(Reference, RdpFractionalReferenceTest,
                         ::testing::ValuesIn(kFractionalCases));

TEST(RdpTest, FullSamplingIsThePlainGaussian) {
  for (double sigma : {0.3, 1.0, 7.5, 100.0}) {
    for (double order : {1.1, 2.0, 3.7, 64.0, 1024.0}) {
      EXPECT_DOUBLE_EQ(Rdp(1.0, sigma, order), order / (2.0 * sigma * sigma));
    }
  }
}

TEST(RdpTest, ZeroSamplingIsFree) { EXPECT_EQ(Rdp(0.0, 1.0, 2.5), 0.0); }

TEST(RdpTest, SmallSamplingRateMatchesLeadingTerm) {
  // A_α - 1 = C(α,2) q² (e^(1/σ²) - 1) + O(q³) (Mironov, Talwar, Zhang 2019, Sec. 3.3), so
  // rdp = α q² (e^(1/σ²) - 1) / 2 to relative O(q e^(2/σ²)) — for σ >= 2; at small σ the
  // terms q^k e^((k²-k)/(2σ²)) of large k take over.
  for (double sigma : {2.0, 10.0, 100.0}) {
    for (double order : {1.5, 2.0, 4.4, 32.0}) {
      const double q = 1e-6;
      const double expected = order * q * q * std::expm1(1.0 / (sigma * sigma)) / 2.0;
      const double tolerance = order == std::floor(order) ? 1e-4 : 1e-4 + 1e-15 / expected;
      EXPECT_NEAR(Rdp(q, sigma, order) / expected, 1.0, tolerance)
          << "sigma=" << sigma << " order=" << order;
    }
  }
}

// Sweep over the documented range: q, σ, integer order k.
class RdpSweepTest
    : public ::testing::TestWithParam<std::tuple<double, double, int>> {};

TEST_P(RdpSweepTest, FractionalSeriesIsContinuousWithIntegerClosedForm) {
  const auto [q, sigma, k] = GetParam();
  // Two independent formulas: at α = k ± 1e-7 the fractional series must bracket the closed
  // form at k (RDP is continuous and non-decreasing in α).
  const double at_k = Rdp(q, sigma, k);
  const double below = Rdp(q, sigma, k - 1e-7);
  const double above = Rdp(q, sigma, k + 1e-7);
  const double slack = 1e-6 * at_k + 1e-14;
  EXPECT_LE(below, at_k + slack);
  EXPECT_GE(above, at_k - slack);
  EXPECT_NEAR(below, at_k, 1e-4 * at_k + 1e-14);
  EXPECT_NEAR(above, at_k, 1e-4 * at_k + 1e-14);
}

TEST_P(RdpSweepTest, MonotoneInOrderSamplingRateAndNoise) {
  const auto [q, sigma, k] = GetParam();
  const double r = Rdp(q, sigma, k + 0.5);
  EXPECT_TRUE(std::isfinite(r));
  EXPECT_GE(r, 0.0);
  const double slack = 1e-9 * r + 1e-15;
  EXPECT_LE(Rdp(q, sigma, k), r + slack);                  // non-decreasing in α
  EXPECT_LE(r, Rdp(q, sigma, k + 1.0) + slack);
  EXPECT_GE(Rdp(q, sigma * 0.9, k + 0.5) + slack, r);      // non-increasing in σ
  EXPECT_LE(Rdp(q * 0.5, sigma, k + 0.5), r + slack);      // non-decreasing in q
  EXPECT_LE(r, Rdp(1.0, sigma, k + 0.5) * (1.0 + 1e-12));  // subsampling never hurts
}

INSTANTIATE_TEST_SUITE_P(Range, RdpSweepTest,
                         ::testing::Combine(::testing::Values(1e-6, 1e-3, 0.05, 0.5, 0.99),
                                            ::testing::Values(0.3, 0.8, 2.0, 20.0, 100.0),
                                            ::testing::Values(2, 5, 11, 63)));

TEST(RdpTest, NearlyFullSamplingApproachesPlainGaussian) {
  for (double order : {2.0, 2.5, 10.0, 10.9}) {
    const double plain = order / (2.0 * 1.5 * 1.5);
    EXPECT_NEAR(Rdp(1.0 - 1e-9, 1.5, order), plain, 1e-6 * plain) << order;
  }
}

TEST(RdpTest, StableAtExtremes) {
  // Largest default order at the smallest σ: huge but finite.
  EXPECT_NEAR(Rdp(0.5, 0.3, 1024) / (1024 / (2 * 0.09)), 1.0, 1e-2);
  EXPECT_TRUE(std::isfinite(Rdp(1e-6, 0.3, 1024)));
  EXPECT_GE(Rdp(1e-6, 100.0, 1.1), 0.0);
}

TEST(RdpTest, RejectsInvalidArguments) {
  EXPECT_EQ(SubsampledGaussianRdp(-0.1, 1.0, 2).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SubsampledGaussianRdp(1.1, 1.0, 2).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SubsampledGaussianRdp(std::nan(""), 1.0, 2).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SubsampledGaussianRdp(0.1, 0.0, 2).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SubsampledGaussianRdp(0.1, INFINITY, 2).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SubsampledGaussianRdp(0.1, 1.0, 1.0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SubsampledGaussianRdp(0.1, 1.0, 2 * kMaxRdpOrder).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fedattn::dp
