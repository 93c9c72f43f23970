#include "fedattn/coordinator/strategy/fedavg.h"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fedattn/coordinator/strategy/aggregation_kernel.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedattn::coordinator::strategy {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<FedAvg> MakeFedAvg(int min_sites = 1) {
  auto made = FedAvg::Create({.min_sites = min_sites});
  EXPECT_TRUE(made.ok());
  return std::move(made).value();
}

TEST(FedAvgTest, EqualsHandComputedWeightedMean) {
  const std::vector<float> a = {1, 2, 3};
  const std::vector<float> b = {4, 0, -3};
  std::vector<float> global = {10, 10, 10};
  auto fedavg = MakeFedAvg();
  const std::vector<FitResult> results = {{"a", 1, a, {{"loss", 2.0}}},
                                          {"b", 3, b, {{"loss", 1.0}}}};
  auto summary = AggregateFit(*fedavg, 1, global, results, {});
  ASSERT_TRUE(summary.ok()) << summary.status();
  // (1·a + 3·b) / 4 = (13/4, 2/4, -6/4)
  EXPECT_FLOAT_EQ(global[0], 10 + 3.25f);
  EXPECT_FLOAT_EQ(global[1], 10 + 0.5f);
  EXPECT_FLOAT_EQ(global[2], 10 - 1.5f);
  EXPECT_EQ(summary->num_results, 2);
  EXPECT_DOUBLE_EQ(summary->total_weight, 4);
  EXPECT_DOUBLE_EQ(summary->metrics.at("loss"), (2.0 + 3 * 1.0) / 4);
  EXPECT_TRUE(summary->failures.empty());
}

TEST(FedAvgTest, StreamingEqualsAllAtOnceOnManyBlocks) {
  // Larger than several kernel blocks with a ragged tail.
  const std::size_t n = 3 * kAggregationBlock + 37;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::vector<std::vector<float>> updates(6, std::vector<float>(n));
  for (auto& u : updates) {
    for (float& x : u) x = normal(rng);
  }
  std::vector<FitResult> results;
  for (std::size_t k = 0; k < updates.size(); ++k) {
    results.push_back({"site" + std::to_string(k), static_cast<int64_t>(10 + k), updates[k], {}});
  }
  std::vector<float> batch(n, 0.5f);
  std::vector<float> streamed(n, 0.5f);
  auto all_at_once = MakeFedAvg();
  ASSERT_TRUE(AggregateFit(*all_at_once, 1, batch, results, {}).ok());
  auto streaming = MakeFedAvg();
  ASSERT_TRUE(streaming->Begin(1, n).ok());
  for (const FitResult& r : results) ASSERT_TRUE(streaming->Accumulate(r).ok());
  ASSERT_TRUE(streaming->Finish(streamed).ok());
  // Same additions in the same order per coordinate: bit-identical.
  EXPECT_EQ(batch, streamed);
  // And equal to a double-precision weighted mean up to float rounding.
  for (std::size_t i = 0; i < n; i += 97) {
    double num = 0, den = 0;
    for (std::size_t k = 0; k < updates.size(); ++k) {
      num += (10.0 + k) * updates[k][i];
      den += 10.0 + k;
    }
    EXPECT_NEAR(batch[i], 0.5 + num / den, 1e-5) << i;
  }
}

TEST(FedAvgTest, FailuresArePassedAsRows) {
  const std::vector<float> a = {1, 1};
  std::vector<float> global = {0, 0};
  auto fedavg = MakeFedAvg();
  const std::vector<FitResult> results = {{"a", 2, a, {}}};
  const std::vector<SiteFailure> failures = {
      {"b", absl::DeadlineExceededError("missed the training deadline")},
      {"c", absl::ResourceExhaustedError("privacy cap reached")}};
  auto summary = AggregateFit(*fedavg, 4, global, results, failures);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(global, (std::vector<float>{1, 1}));
  ASSERT_EQ(summary->failures.size(), 2u);
  EXPECT_EQ(summary->failures[0].site, "b");
  EXPECT_TRUE(absl::IsDeadlineExceeded(summary->failures[0].status));
  EXPECT_EQ(summary->failures[1].site, "c");
}

TEST(FedAvgTest, RefusesWhenMinSitesNotMet) {
  const std::vector<float> a = {1};
  std::vector<float> global = {0};
  auto fedavg = MakeFedAvg(/*min_sites=*/3);
  const std::vector<FitResult> results = {{"a", 1, a, {}}};
  const std::vector<SiteFailure> failures = {{"b", absl::UnavailableError("dropped")}};
  auto summary = AggregateFit(*fedavg, 2, global, results, failures);
  ASSERT_FALSE(summary.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(summary.status()));
  EXPECT_THAT(summary.status().message(),
              HasSubstr("round 2: 1 result(s) accepted, 1 failed; min_sites is 3"));
  EXPECT_THAT(summary.status().message(), HasSubstr("b: UNAVAILABLE: dropped"));
  EXPECT_EQ(global[0], 0);  // unchanged on error
}

TEST(FedAvgTest, RejectsMismatchedLengthNamingTheSite) {
  const std::vector<float> good = {1, 2};
  const std::vector<float> short_update = {1};
  std::vector<float> global = {0, 0};
  auto fedavg = MakeFedAvg();
  ASSERT_TRUE(fedavg->Begin(1, 2).ok());
  ASSERT_TRUE(fedavg->Accumulate({"a", 1, good, {}}).ok());
  absl::Status rejected = fedavg->Accumulate({"hospital-b", 1, short_update, {}});
  EXPECT_TRUE(absl::IsInvalidArgument(rejected));
  EXPECT_THAT(rejected.message(), HasSubstr("site hospital-b: update has 1 floats, expected 2"));
  auto summary = fedavg->Finish(global);
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(global, good);
  ASSERT_EQ(summary->failures.size(), 1u);
  EXPECT_EQ(summary->failures[0].site, "hospital-b");
}

TEST(FedAvgTest, NonFiniteUpdateBecomesAFailureRowAndDoesNotPoison) {
  const std::size_t n = 2 * kAggregationBlock + 5;  // the NaN sits in a later block
  const std::size_t nan_at = kAggregationBlock + 3;
  std::vector<float> a(n, 1.0f);
  std::vector<float> bad(n, 5.0f);
  bad[nan_at] = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> inf(n, 5.0f);
  inf[0] = std::numeric_limits<float>::infinity();
  std::vector<float> c(n, 3.0f);
  // Streaming, with the bad sites arriving after a good one (undo path) and first.
  for (bool bad_first : {true, false}) {
    auto fedavg = MakeFedAvg();
    ASSERT_TRUE(fedavg->Begin(1, n).ok());
    if (bad_first) {
      EXPECT_THAT(fedavg->Accumulate({"nan-site", 1, bad, {}}).message(),
                  HasSubstr(absl::StrCat("site nan-site: update holds NaN or Inf at index ", nan_at)));
    }
    ASSERT_TRUE(fedavg->Accumulate({"a", 1, a, {}}).ok());
    if (!bad_first) {
      EXPECT_THAT(fedavg->Accumulate({"nan-site", 1, bad, {}}).message(),
                  HasSubstr(absl::StrCat("site nan-site: update holds NaN or Inf at index ", nan_at)));
    }
    EXPECT_THAT(fedavg->Accumulate({"inf-site", 1, inf, {}}).message(),
                HasSubstr("site inf-site: update holds NaN or Inf at index 0"));
    ASSERT_TRUE(fedavg->Accumulate({"c", 1, c, {}}).ok());
    std::vector<float> global(n, 0.0f);
    auto summary = fedavg->Finish(global);
    ASSERT_TRUE(summary.ok()) << summary.status();
    EXPECT_EQ(summary->num_results, 2);
    ASSERT_EQ(summary->failures.size(), 2u);
    for (float x : global) ASSERT_NEAR(x, 2.0f, 1e-6f);
  }
  // All at once: the fused pass falls back and rejects exactly the bad sites.
  auto fedavg = MakeFedAvg();
  std::vector<float> global(n, 0.0f);
  const std::vector<FitResult> results = {
      {"a", 1, a, {}}, {"nan-site", 1, bad, {}}, {"inf-site", 1, inf, {}}, {"c", 1, c, {}}};
  auto summary = AggregateFit(*fedavg, 1, global, results, {});
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->num_results, 2);
  ASSERT_EQ(summary->failures.size(), 2u);
  EXPECT_EQ(summary->failures[0].site, "nan-site");
  EXPECT_EQ(summary->failures[1].site, "inf-site");
  for (float x : global) ASSERT_FLOAT_EQ(x, 2.0f);
}

TEST(FedAvgTest, RejectsSecondResultFromTheSameSite) {
  const std::vector<float> a = {1};
  auto fedavg = MakeFedAvg();
  ASSERT_TRUE(fedavg->Begin(1, 1).ok());
  ASSERT_TRUE(fedavg->Accumulate({"a", 1, a, {}}).ok());
  EXPECT_THAT(fedavg->Accumulate({"a", 1, a, {}}).message(),
              HasSubstr("site a: second result in round 1"));
}

TEST(FedAvgTest, RefusesZeroTotalWeight) {
  const std::vector<float> a = {1};
  std::vector<float> global = {0};
  auto fedavg = MakeFedAvg();
  const std::vector<FitResult> results = {{"a", 0, a, {}}};
  auto summary = AggregateFit(*fedavg, 3, global, results, {});
  ASSERT_FALSE(summary.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(summary.status()));
  EXPECT_THAT(summary.status().message(), HasSubstr("round 3: zero total weight"));
}

TEST(FedAvgTest, RejectsNegativeExamples) {
  const std::vector<float> a = {1};
  auto fedavg = MakeFedAvg();
  ASSERT_TRUE(fedavg->Begin(1, 1).ok());
  EXPECT_THAT(fedavg->Accumulate({"a", -1, a, {}}).message(),
              HasSubstr("site a: negative num_examples -1"));
}

TEST(FedAvgTest, SecAggSumGivesTheSameModelAsIndividualResults) {
  const std::vector<float> a = {1, 2, 3};
  const std::vector<float> b = {-1, 4, 0};
  std::vector<float> sum(3);
  for (int i = 0; i < 3; ++i) sum[i] = 2 * a[i] + 6 * b[i];
  std::vector<float> from_sum = {1, 1, 1};
  std::vector<float> from_results = {1, 1, 1};
  auto fedavg = MakeFedAvg(/*min_sites=*/2);
  ASSERT_TRUE(fedavg->Begin(1, 3).ok());
  ASSERT_TRUE(fedavg->AccumulateSum(sum, 8, 2).ok());
  fedavg->AddFailure({"c", absl::UnavailableError("dropped after masking")});
  auto summary = fedavg->Finish(from_sum);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->num_results, 2);
  EXPECT_EQ(summary->failures.size(), 1u);
  const std::vector<FitResult> results = {{"a", 2, a, {}}, {"b", 6, b, {}}};
  ASSERT_TRUE(AggregateFit(*fedavg, 2, from_results, results, {}).ok());
  for (int i = 0; i < 3; ++i) EXPECT_FLOAT_EQ(from_sum[i], from_results[i]);

  ASSERT_TRUE(fedavg->Begin(3, 3).ok());
  const std::vector<float> wrong = {1, 2};
  EXPECT_THAT(fedavg->AccumulateSum(wrong, 1, 1).message(),
              HasSubstr("secure-aggregation sum has 2 floats, expected 3"));
}

TEST(FedAvgTest, CallerErrorsAreFailedPrecondition) {
  auto fedavg = MakeFedAvg();
  const std::vector<float> a = {1};
  std::vector<float> global = {0};
  EXPECT_TRUE(absl::IsFailedPrecondition(fedavg->Accumulate({"a", 1, a, {}})));
  EXPECT_TRUE(absl::IsFailedPrecondition(fedavg->Finish(global).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(fedavg->Begin(1, 0)));
  ASSERT_TRUE(fedavg->Begin(1, 2).ok());
  EXPECT_THAT(fedavg->Finish(global).status().message(),
              HasSubstr("global model has 1 floats, round 1 expects 2"));
}

TEST(FedAvgTest, OptionsValidate) {
  EXPECT_TRUE(FedAvgOptions{}.Validate().ok());
  EXPECT_THAT(FedAvgOptions{.min_sites = 0}.Validate().message(),
              HasSubstr("min_sites must be >= 1, got 0"));
  EXPECT_FALSE(FedAvg::Create({.min_sites = -2}).ok());
  EXPECT_THAT(FedProxOptions{.proximal_mu = -0.5}.Validate().message(),
              HasSubstr("proximal_mu must be finite and >= 0, got -0.5"));
}

TEST(FedProxTest, SendsMuAndAggregatesLikeFedAvg) {
  auto fedprox = FedProx::Create({.min_sites = 1, .proximal_mu = 0.25});
  ASSERT_TRUE(fedprox.ok());
  const ConfigRecord config = (*fedprox)->ConfigureFit(5);
  EXPECT_DOUBLE_EQ(config.at("proximal_mu"), 0.25);
  EXPECT_DOUBLE_EQ(config.at("round"), 5);
  EXPECT_EQ((*fedprox)->Name(), "fedprox");
  const std::vector<float> a = {2};
  const std::vector<float> b = {4};
  std::vector<float> global = {0};
  const std::vector<FitResult> results = {{"a", 1, a, {}}, {"b", 1, b, {}}};
  ASSERT_TRUE(AggregateFit(**fedprox, 1, global, results, {}).ok());
  EXPECT_FLOAT_EQ(global[0], 3);
}

}  // namespace
}  // namespace fedattn::coordinator::strategy
