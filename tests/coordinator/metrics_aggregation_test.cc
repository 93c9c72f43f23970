#include "fedattn/coordinator/strategy/metrics_aggregation.h"

#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedattn::coordinator::strategy {
namespace {

using ::testing::HasSubstr;

TEST(MetricsAggregationTest, WeightsByValidationExamples) {
  const std::vector<EvaluateResult> results = {
      {"a", 100, {{"accuracy", 0.9}, {"loss", 0.3}, {"auc", 0.95}}},
      {"b", 300, {{"accuracy", 0.7}, {"loss", 0.6}}}};
  auto summary = AggregateEvaluate(results, {});
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_DOUBLE_EQ(summary->metrics.at("accuracy"), (100 * 0.9 + 300 * 0.7) / 400);
  EXPECT_DOUBLE_EQ(summary->metrics.at("loss"), (100 * 0.3 + 300 * 0.6) / 400);
  // Reported by one site only: averaged over that site.
  EXPECT_DOUBLE_EQ(summary->metrics.at("auc"), 0.95);
  EXPECT_EQ(summary->num_results, 2);
  EXPECT_EQ(summary->num_examples, 400);
}

TEST(MetricsAggregationTest, NonFiniteMetricBecomesAFailureRow) {
  const std::vector<EvaluateResult> results = {
      {"a", 10, {{"loss", 1.0}}},
      {"b", 10, {{"loss", std::numeric_limits<double>::infinity()}}}};
  const std::vector<SiteFailure> failures = {{"c", absl::DeadlineExceededError("late")}};
  auto summary = AggregateEvaluate(results, failures);
  ASSERT_TRUE(summary.ok());
  EXPECT_DOUBLE_EQ(summary->metrics.at("loss"), 1.0);
  ASSERT_EQ(summary->failures.size(), 2u);
  EXPECT_EQ(summary->failures[0].site, "c");
  EXPECT_THAT(summary->failures[1].status.message(),
              HasSubstr("site b: metric 'loss' is not finite"));
}

TEST(MetricsAggregationTest, Refusals) {
  const std::vector<EvaluateResult> one = {{"a", 10, {{"loss", 1.0}}}};
  const std::vector<SiteFailure> failures = {{"b", absl::UnavailableError("dropped")}};
  auto too_few = AggregateEvaluate(one, failures, /*min_sites=*/2);
  EXPECT_TRUE(absl::IsFailedPrecondition(too_few.status()));
  EXPECT_THAT(too_few.status().message(),
              HasSubstr("evaluation: 1 result(s) accepted, 1 failed; min_sites is 2"));
  const std::vector<EvaluateResult> empty = {{"a", 0, {{"loss", 1.0}}}};
  EXPECT_THAT(AggregateEvaluate(empty, {}).status().message(), HasSubstr("zero total weight"));
  const std::vector<EvaluateResult> negative = {{"a", -3, {}}, {"b", 1, {}}};
  auto summary = AggregateEvaluate(negative, {});
  ASSERT_TRUE(summary.ok());
  EXPECT_THAT(summary->failures[0].status.message(), HasSubstr("site a: negative num_examples -3"));
}

}  // namespace
}  // namespace fedattn::coordinator::strategy
