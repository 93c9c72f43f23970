#include "fedattn/dp/accountant.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "fedattn/dp/rdp.h"
#include "gtest/gtest.h"

namespace fedattn::dp {
namespace {

PrivacyGuarantee Epsilon(double q, double sigma, int64_t steps, double delta,
                         const AccountantOptions& options = {}) {
  auto g = ComputeEpsilon(q, sigma, steps, delta, options);
  EXPECT_TRUE(g.ok()) << g.status();
  return g.ok() ? *g : PrivacyGuarantee{};
}

TEST(AccountantTest, DefaultGridIsDpAccountingsGrid) {
  const std::vector<double> orders = DefaultRdpOrders();
  ASSERT_EQ(orders.size(), 99u + 53u + 4u);
  EXPECT_EQ(orders.front(), 1.1);
  EXPECT_EQ(orders[98], 1.0 + 99 / 10.0);
  EXPECT_EQ(orders[99], 11.0);
  EXPECT_EQ(orders[151], 63.0);
  EXPECT_EQ(orders.back(), 1024.0);
  EXPECT_TRUE(std::is_sorted(orders.begin(), orders.end()));
  EXPECT_TRUE(AccountantOptions{}.Validate().ok());
}

// ε with the default grid and the Balle et al. 2020 conversion. Reference values:
// tests/common/dp/rdp_reference.py (60-digit arithmetic; fractional orders by quadrature).
struct EpsilonCase {
  double q;
  double sigma;
  int64_t steps;
  double delta;
  double epsilon;
  double optimal_order;
};

const EpsilonCase kEpsilonCases[] = {
    // TF Privacy's MNIST tutorial: N = 60000, batch 256, σ = 1.1, 60 epochs (14063 steps).
    {256.0 / 60000.0, 1.1, 14063, 1e-5, 2.596655528680917, 1.0 + 71 / 10.0},
    {256.0 / 60000.0, 1.1, 3516, 1e-5, 1.281300016125639, 12},
    {0.01, 1.0, 10000, 1e-5, 6.712738297545422, 1.0 + 31 / 10.0},
    {1e-3, 0.8, 1000000, 1e-6, 11.37278485060263, 3.5},
    {1e-6, 100.0, 10000000, 1e-12, 1.925763592653537e-2, 1024},
    {0.5, 0.3, 10, 1e-2, 57.66796207206480, 1.0 + 2 / 10.0},
    {1.0, 10.0, 100, 1e-5, 4.728507067217623, 1.0 + 44 / 10.0},
};

class AccountantReferenceTest : public ::testing::TestWithParam<EpsilonCase> {};

TEST_P(AccountantReferenceTest, MatchesIndependentReference) {
  const EpsilonCase& c = GetParam();
  const PrivacyGuarantee g = Epsilon(c.q, c.sigma, c.steps, c.delta);
  EXPECT_NEAR(g.epsilon, c.epsilon, 1e-8 * c.epsilon);
  EXPECT_EQ(g.optimal_order, c.optimal_order);
  EXPECT_EQ(g.delta, c.delta);
  EXPECT_EQ(g.orders, DefaultRdpOrders());
}
INSTANTIATE_TEST_SUITE_P(Reference, AccountantReferenceTest, ::testing::ValuesIn(kEpsilonCases));

TEST(AccountantTest, PlainGaussianMatchesClosedForm) {
  // q = 1: rdp(α) = Tα/(2σ²), so ε(α) = Tα/(2σ²) - (log δ + log α)/(α-1) + log((α-1)/α).
  const double sigma = 4.0;
  const int64_t steps = 50;
  const double delta = 1e-6;
  const std::vector<double> orders = {2, 3, 5, 8, 13, 21};
  double best = INFINITY;
  double best_order = 0;
  for (double a : orders) {
    const double e = steps * a / (2 * sigma * sigma) - (std::log(delta) + std::log(a)) / (a - 1) +
                     std::log((a - 1) / a);
    if (e < best) {
      best = e;
      best_order = a;
    }
  }
  const PrivacyGuarantee g = Epsilon(1.0, sigma, steps, delta, {.orders = orders});
  EXPECT_NEAR(g.epsilon, best, 1e-12 * best);
  EXPECT_EQ(g.optimal_order, best_order);
  EXPECT_EQ(g.orders, orders);
}

TEST(AccountantTest, HistoryComposesAdditively) {
  auto accountant = RdpAccountant::Create();
  ASSERT_TRUE(accountant.ok());
  ASSERT_TRUE(accountant->Compose({0.01, 1.0, 300}).ok());
  ASSERT_TRUE(accountant->Compose({0.02, 1.5, 700}).ok());
  ASSERT_TRUE(accountant->Compose({0.01, 1.0, 200}).ok());
  ASSERT_EQ(accountant->history().size(), 3u);
  for (size_t i = 0; i < accountant->orders().size(); ++i) {
    const double a = accountant->orders()[i];
    const double expected = 500 * *SubsampledGaussianRdp(0.01, 1.0, a) +
                            700 * *SubsampledGaussianRdp(0.02, 1.5, a);
    EXPECT_NEAR(accountant->rdp()[i], expected, 1e-12 * expected) << a;
  }
  // Splitting a run into rounds does not change its guarantee.
  const PrivacyGuarantee split = *accountant->GetEpsilon(1e-5);
  auto whole = RdpAccountant::Create();
  ASSERT_TRUE(whole->Compose({0.01, 1.0, 500}).ok());
  ASSERT_TRUE(whole->Compose({0.02, 1.5, 700}).ok());
  EXPECT_NEAR(whole->GetEpsilon(1e-5)->epsilon, split.epsilon, 1e-12 * split.epsilon);
}

TEST(AccountantTest, InvalidEntryRecordsNothing) {
  auto accountant = RdpAccountant::Create();
  ASSERT_TRUE(accountant.ok());
  EXPECT_EQ(accountant->Compose({1.5, 1.0, 10}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(accountant->Compose({0.1, -1.0, 10}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(accountant->Compose({0.1, 1.0, -1}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(accountant->history().empty());
  EXPECT_TRUE(std::all_of(accountant->rdp().begin(), accountant->rdp().end(),
                          [](double r) { return r == 0.0; }));
}

class DeltaRoundTripTest
    : public ::testing::TestWithParam<std::tuple<double, double, int64_t, double>> {};

TEST_P(DeltaRoundTripTest, DeltaInvertsEpsilon) {
  const auto [q, sigma, steps, delta] = GetParam();
  const PrivacyGuarantee g = Epsilon(q, sigma, steps, delta);
  if (g.epsilon == 0.0) {
    // Clamped (the bound went negative): δ at ε = 0 is then no larger than the δ asked for.
    EXPECT_LE(ComputeDelta(q, sigma, steps, 0.0)->delta, delta);
    return;
  }
  auto back = ComputeDelta(q, sigma, steps, g.epsilon);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_NEAR(std::log(back->delta), std::log(delta), 1e-9 * std::fabs(std::log(delta)));
  EXPECT_EQ(back->optimal_order, g.optimal_order);
  // A larger δ buys a smaller ε.
  EXPECT_LT(Epsilon(q, sigma, steps, delta * 10).epsilon, g.epsilon);
}

INSTANTIATE_TEST_SUITE_P(
    Range, DeltaRoundTripTest,
    ::testing::Combine(::testing::Values(1e-6, 1e-3, 0.1, 1.0), ::testing::Values(0.3, 1.0, 30.0),
                       ::testing::Values(int64_t{1}, int64_t{1000}, int64_t{10000000}),
                       ::testing::Values(1e-12, 1e-5, 1e-3)));

TEST(AccountantTest, EpsilonDependsOnTheGrid) {
  const PrivacyGuarantee full = Epsilon(0.01, 1.0, 10000, 1e-5);
  const PrivacyGuarantee coarse = Epsilon(0.01, 1.0, 10000, 1e-5, {.orders = {2, 32}});
  EXPECT_GT(coarse.epsilon, full.epsilon);
  EXPECT_EQ(coarse.orders, (std::vector<double>{2, 32}));
  EXPECT_TRUE(coarse.optimal_order_at_grid_edge);
  EXPECT_FALSE(full.optimal_order_at_grid_edge);
}

TEST(AccountantTest, HugeNoiseHitsTheGridFloor) {
  // With essentially no RDP the largest order wins and ε is the conversion's floor.
  const PrivacyGuarantee g = Epsilon(1e-6, 100.0, 1, 1e-5);
  EXPECT_EQ(g.optimal_order, 1024.0);
  EXPECT_TRUE(g.optimal_order_at_grid_edge);
  EXPECT_NEAR(g.epsilon, -(std::log(1e-5) + std::log(1024.0)) / 1023 + std::log(1023.0 / 1024),
              1e-9);
}

TEST(AccountantTest, RejectsBadOptionsAndQueries) {
  EXPECT_FALSE(RdpAccountant::Create({.orders = {}}).ok());
  EXPECT_FALSE(RdpAccountant::Create({.orders = {1.0, 2.0}}).ok());
  EXPECT_FALSE(RdpAccountant::Create({.orders = {2.0, 2.0}}).ok());
  EXPECT_FALSE(RdpAccountant::Create({.orders = {2.0, NAN}}).ok());
  EXPECT_FALSE(RdpAccountant::Create({.orders = {2.0, 1e9}}).ok());
  auto accountant = RdpAccountant::Create();
  ASSERT_TRUE(accountant.ok());
  for (double delta : {0.0, 1.0, -1e-5, 2.0, static_cast<double>(NAN)}) {
    EXPECT_EQ(accountant->GetEpsilon(delta).status().code(), absl::StatusCode::kInvalidArgument)
        << delta;
  }
  EXPECT_FALSE(accountant->GetDelta(-1.0).ok());
  EXPECT_FALSE(accountant->GetDelta(INFINITY).ok());
  const std::vector<double> orders = {2, 3};
  const std::vector<double> rdp = {0.1};
  EXPECT_FALSE(EpsilonFromRdp(orders, rdp, 1e-5).ok());
}

}  // namespace
}  // namespace fedattn::dp
