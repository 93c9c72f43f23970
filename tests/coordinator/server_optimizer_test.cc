#include "fedattn/coordinator/strategy/server_optimizer.h"

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedattn::coordinator::strategy {
namespace {

using ::testing::HasSubstr;

// A direct transcription of Reddi et al. 2021, Algorithm 2, in doubles, independent of the code
// under test: Δ = weighted mean of client deltas, then m, v, x.
struct Reference {
  ServerOptimizerKind kind;
  ServerOptimizerOptions o;
  std::vector<double> x, m, v;

  void Step(const std::vector<std::vector<double>>& deltas, const std::vector<double>& weights) {
    const std::size_t n = x.size();
    if (m.empty()) {
      m.assign(n, 0.0);
      v.assign(n, o.tau * o.tau);
    }
    double total = 0;
    for (double w : weights) total += w;
    for (std::size_t i = 0; i < n; ++i) {
      double d = 0;
      for (std::size_t k = 0; k < deltas.size(); ++k) d += weights[k] * deltas[k][i];
      d /= total;
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * d;
      if (kind == ServerOptimizerKind::kAdagrad) {
        v[i] = v[i] + d * d;
      } else if (kind == ServerOptimizerKind::kAdam) {
        v[i] = o.beta2 * v[i] + (1 - o.beta2) * d * d;
      } else {
        const double s = v[i] - d * d;
        v[i] = v[i] - (1 - o.beta2) * d * d * ((s > 0) - (s < 0));
      }
      x[i] = x[i] + o.eta * m[i] / (std::sqrt(v[i]) + o.tau);
    }
  }
};

std::vector<std::vector<double>> RoundDeltas(int round) {
  // Different signs and magnitudes per coordinate and round, so Yogi's sign term flips.
  return {{0.1 * round, -0.2, 0.05, 1.0 / round}, {-0.3, 0.4 / round, 0.05, -0.5}};
}

class ServerOptimizerTest : public ::testing::TestWithParam<ServerOptimizerKind> {};

TEST_P(ServerOptimizerTest, MatchesPaperAlgorithm2ForSeveralRounds) {
  const ServerOptimizerOptions options{.eta = 0.05, .beta1 = 0.9, .beta2 = 0.95, .tau = 0.01};
  auto strategy = ServerOptimizerStrategy::Create(GetParam(), options);
  ASSERT_TRUE(strategy.ok()) << strategy.status();
  Reference ref{GetParam(), options, {1.0, -1.0, 0.5, 0.0}, {}, {}};
  std::vector<float> global = {1.0f, -1.0f, 0.5f, 0.0f};
  const std::vector<double> weights = {3, 1};
  for (int round = 1; round <= 5; ++round) {
    const auto deltas = RoundDeltas(round);
    std::vector<std::vector<float>> as_float;
    for (const auto& d : deltas) as_float.emplace_back(d.begin(), d.end());
    const std::vector<FitResult> results = {{"a", 3, as_float[0], {}}, {"b", 1, as_float[1], {}}};
    ASSERT_TRUE(AggregateFit(**strategy, round, global, results, {}).ok());
    ref.Step(deltas, weights);
    for (std::size_t i = 0; i < global.size(); ++i) {
      EXPECT_NEAR(global[i], ref.x[i], 1e-5) << "round " << round << " coordinate " << i;
    }
  }
}

TEST_P(ServerOptimizerTest, SaveRestoreEqualsUninterruptedTraining) {
  const ServerOptimizerOptions options{.eta = 0.1, .beta1 = 0.8, .beta2 = 0.9, .tau = 0.001};
  auto run_round = [](Strategy& s, int round, std::vector<float>& global) {
    const auto deltas = RoundDeltas(round);
    std::vector<std::vector<float>> f;
    for (const auto& d : deltas) f.emplace_back(d.begin(), d.end());
    const std::vector<FitResult> results = {{"a", 2, f[0], {}}, {"b", 5, f[1], {}}};
    ASSERT_TRUE(AggregateFit(s, round, global, results, {}).ok());
  };
  auto uninterrupted = ServerOptimizerStrategy::Create(GetParam(), options);
  std::vector<float> expected = {0.2f, 0.4f, -0.6f, 0.8f};
  for (int round = 1; round <= 4; ++round) run_round(**uninterrupted, round, expected);

  auto before = ServerOptimizerStrategy::Create(GetParam(), options);
  std::vector<float> global = {0.2f, 0.4f, -0.6f, 0.8f};
  run_round(**before, 1, global);
  run_round(**before, 2, global);
  const std::vector<NamedBuffer> saved = (*before)->SaveState();
  ASSERT_EQ(saved.size(), 2u);
  EXPECT_EQ(saved[0].name, "m");
  EXPECT_EQ(saved[1].name, "v");
  before->reset();  // the coordinator died
  auto after = ServerOptimizerStrategy::Create(GetParam(), options);
  ASSERT_TRUE((*after)->RestoreState(saved).ok());
  run_round(**after, 3, global);
  run_round(**after, 4, global);
  EXPECT_EQ(global, expected);  // bit-identical
}

INSTANTIATE_TEST_SUITE_P(Kinds, ServerOptimizerTest,
                         ::testing::Values(ServerOptimizerKind::kAdagrad,
                                           ServerOptimizerKind::kAdam,
                                           ServerOptimizerKind::kYogi));

TEST(ServerOptimizerOptionsTest, ValidateNamesTheField) {
  EXPECT_TRUE(ServerOptimizerOptions{}.Validate().ok());
  EXPECT_THAT(ServerOptimizerOptions{.eta = 0}.Validate().message(),
              HasSubstr("eta must be finite and > 0, got 0"));
  EXPECT_THAT(ServerOptimizerOptions{.beta1 = 1.0}.Validate().message(),
              HasSubstr("beta1 must be in [0, 1), got 1"));
  EXPECT_THAT(ServerOptimizerOptions{.beta2 = -0.1}.Validate().message(),
              HasSubstr("beta2 must be in [0, 1), got -0.1"));
  EXPECT_THAT(ServerOptimizerOptions{.tau = 0}.Validate().message(),
              HasSubstr("tau must be finite and > 0, got 0"));
  EXPECT_THAT(ServerOptimizerOptions{.min_sites = 0}.Validate().message(),
              HasSubstr("min_sites must be >= 1, got 0"));
  EXPECT_FALSE(MakeFedAdam({.tau = -1}).ok());
}

TEST(ServerOptimizerTest, NamesAndStateErrors) {
  EXPECT_EQ((*MakeFedAdam({}))->Name(), "fedadam");
  EXPECT_EQ((*MakeFedYogi({}))->Name(), "fedyogi");
  auto adagrad = MakeFedAdagrad({});
  EXPECT_EQ((*adagrad)->Name(), "fedadagrad");
  EXPECT_THAT((*adagrad)->RestoreState(std::vector<NamedBuffer>{{"w", {1}}}).message(),
              HasSubstr("fedadagrad: unknown state buffer 'w'"));
  EXPECT_THAT((*adagrad)->RestoreState(std::vector<NamedBuffer>{{"m", {1}}, {"v", {1, 2}}})
                  .message(),
              HasSubstr("state needs buffers 'm' and 'v' of equal length, got m=1 v=2"));
  ASSERT_TRUE((*adagrad)->RestoreState(std::vector<NamedBuffer>{{"m", {0}}, {"v", {1}}}).ok());
  EXPECT_THAT((*adagrad)->Begin(1, 3).message(),
              HasSubstr("fedadagrad: optimizer state has 1 floats, model has 3"));
}

TEST(ServerOptimizerTest, AcceptsASecAggSum) {
  auto adam = MakeFedAdam({.eta = 0.1});
  auto adam_sum = MakeFedAdam({.eta = 0.1});
  const std::vector<float> a = {0.5f, -0.25f};
  const std::vector<float> b = {0.1f, 0.3f};
  const std::vector<float> sum = {1 * 0.5f + 3 * 0.1f, 1 * -0.25f + 3 * 0.3f};
  std::vector<float> g1 = {0, 0};
  std::vector<float> g2 = {0, 0};
  const std::vector<FitResult> results = {{"a", 1, a, {}}, {"b", 3, b, {}}};
  ASSERT_TRUE(AggregateFit(**adam, 1, g1, results, {}).ok());
  ASSERT_TRUE((*adam_sum)->Begin(1, 2).ok());
  ASSERT_TRUE((*adam_sum)->AccumulateSum(sum, 4, 2).ok());
  ASSERT_TRUE((*adam_sum)->Finish(g2).ok());
  EXPECT_NEAR(g1[0], g2[0], 1e-6);
  EXPECT_NEAR(g1[1], g2[1], 1e-6);
}

}  // namespace
}  // namespace fedattn::coordinator::strategy
