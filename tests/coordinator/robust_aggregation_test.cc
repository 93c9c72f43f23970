#include "fedattn/coordinator/strategy/robust_aggregation.h"

#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedattn::coordinator::strategy {
namespace {

using ::testing::HasSubstr;

std::vector<FitResult> Results(const std::vector<std::vector<float>>& updates) {
  std::vector<FitResult> results;
  for (std::size_t k = 0; k < updates.size(); ++k) {
    results.push_back({"s" + std::to_string(k), 1, updates[k], {}});
  }
  return results;
}

TEST(CoordinateMedianTest, OddEvenAndTies) {
  auto median = CoordinateMedian::Create({});
  ASSERT_TRUE(median.ok());
  EXPECT_TRUE((*median)->NeedsAllUpdates());
  // Odd count: per coordinate {1,5,3}→3, {2,2,9}→2 (tie), {-1,-7,100}→-1.
  const std::vector<std::vector<float>> odd = {{1, 2, -1}, {5, 2, -7}, {3, 9, 100}};
  std::vector<float> global = {0, 0, 0};
  ASSERT_TRUE(AggregateFit(**median, 1, global, Results(odd), {}).ok());
  EXPECT_EQ(global, (std::vector<float>{3, 2, -1}));
  // Even count: mean of the two middle values; ties in the middle give that value.
  const std::vector<std::vector<float>> even = {{1, 4, 0}, {2, 4, 0}, {10, 4, 7}, {-5, 1, 7}};
  std::vector<float> g2 = {1, 1, 1};
  ASSERT_TRUE(AggregateFit(**median, 2, g2, Results(even), {}).ok());
  // {-5,1,2,10}→1.5, {1,4,4,4}→4, {0,0,7,7}→3.5
  EXPECT_EQ(g2, (std::vector<float>{2.5f, 5, 4.5f}));
}

TEST(CoordinateMedianTest, IgnoresAnOutlier) {
  auto median = CoordinateMedian::Create({});
  const std::vector<std::vector<float>> updates = {{1}, {1.1f}, {0.9f}, {1e30f}};
  std::vector<float> global = {0};
  ASSERT_TRUE(AggregateFit(**median, 1, global, Results(updates), {}).ok());
  EXPECT_FLOAT_EQ(global[0], 1.05f);
}

TEST(TrimmedMeanTest, TrimsFloorBetaNPerEnd) {
  auto trimmed = TrimmedMean::Create({.beta = 0.2});
  ASSERT_TRUE(trimmed.ok());
  // n = 5, floor(0.2·5) = 1 per end: {-100, 1, 2, 3, 100} → mean(1,2,3) = 2;
  // ties {4,4,4,4,0} → sorted {0,4,4,4,4} → mean(4,4,4) = 4.
  const std::vector<std::vector<float>> updates = {{-100, 4}, {1, 4}, {2, 4}, {3, 4}, {100, 0}};
  std::vector<float> global = {0, 0};
  ASSERT_TRUE(AggregateFit(**trimmed, 1, global, Results(updates), {}).ok());
  EXPECT_FLOAT_EQ(global[0], 2);
  EXPECT_FLOAT_EQ(global[1], 4);
  // n = 4, floor(0.2·4) = 0: the plain mean.
  const std::vector<std::vector<float>> even = {{1}, {2}, {3}, {10}};
  std::vector<float> g2 = {0};
  ASSERT_TRUE(AggregateFit(**trimmed, 2, g2, Results(even), {}).ok());
  EXPECT_FLOAT_EQ(g2[0], 4);
  // beta = 0.25 on n = 4 trims one per end: mean(2,3) = 2.5.
  auto quarter = TrimmedMean::Create({.beta = 0.25});
  std::vector<float> g3 = {0};
  ASSERT_TRUE(AggregateFit(**quarter, 1, g3, Results(even), {}).ok());
  EXPECT_FLOAT_EQ(g3[0], 2.5f);
}

TEST(TrimmedMeanTest, OptionsValidate) {
  EXPECT_TRUE(TrimmedMeanOptions{}.Validate().ok());
  EXPECT_THAT(TrimmedMeanOptions{.beta = 0.5}.Validate().message(),
              HasSubstr("beta must be in [0, 0.5), got 0.5"));
  EXPECT_THAT(MedianOptions{.min_sites = 0}.Validate().message(),
              HasSubstr("min_sites must be >= 1, got 0"));
  EXPECT_FALSE(TrimmedMean::Create({.beta = -0.1}).ok());
}

TEST(RobustStrategyTest, RefusesSecAggSum) {
  auto median = CoordinateMedian::Create({});
  ASSERT_TRUE((*median)->Begin(1, 1).ok());
  const std::vector<float> sum = {1};
  absl::Status status = (*median)->AccumulateSum(sum, 1, 1);
  EXPECT_TRUE(absl::IsFailedPrecondition(status));
  EXPECT_THAT(status.message(), HasSubstr("median needs every site's update"));
}

TEST(RobustStrategyTest, RejectionsAndFailuresAreRows) {
  auto trimmed = TrimmedMean::Create({.min_sites = 2, .beta = 0.1});
  const std::vector<float> a = {1, 1};
  const std::vector<float> b = {3, 3};
  const std::vector<float> nan = {std::numeric_limits<float>::quiet_NaN(), 0};
  const std::vector<float> short_update = {1};
  const std::vector<FitResult> results = {
      {"a", 1, a, {}}, {"nan", 1, nan, {}}, {"short", 1, short_update, {}}, {"b", 1, b, {}}};
  const std::vector<SiteFailure> failures = {{"gone", absl::DeadlineExceededError("late")}};
  std::vector<float> global = {0, 0};
  auto summary = AggregateFit(**trimmed, 1, global, results, failures);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(global, (std::vector<float>{2, 2}));
  ASSERT_EQ(summary->failures.size(), 3u);
  EXPECT_THAT(summary->failures[0].status.message(),
              HasSubstr("site nan: update holds NaN or Inf at index 0"));
  EXPECT_THAT(summary->failures[1].status.message(),
              HasSubstr("site short: update has 1 floats, expected 2"));
  EXPECT_EQ(summary->failures[2].site, "gone");
}

TEST(RobustStrategyTest, RefusesWhenMinSitesNotMet) {
  auto median = CoordinateMedian::Create({.min_sites = 2});
  const std::vector<float> a = {1};
  const std::vector<FitResult> results = {{"a", 1, a, {}}};
  const std::vector<SiteFailure> failures = {{"b", absl::UnavailableError("dropped")}};
  std::vector<float> global = {0};
  auto summary = AggregateFit(**median, 7, global, results, failures);
  ASSERT_FALSE(summary.ok());
  EXPECT_THAT(summary.status().message(),
              HasSubstr("round 7: 1 result(s) accepted, 1 failed; min_sites is 2"));
  EXPECT_EQ(global[0], 0);
}

}  // namespace
}  // namespace fedattn::coordinator::strategy
