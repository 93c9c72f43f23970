#include "fedattn/secagg/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace fedattn::secagg {
namespace {

using ::testing::HasSubstr;

SecAggConfig Base(uint32_t n) {
  SecAggConfig config;
  config.job_id = "job";
  for (uint32_t i = 0; i < n; ++i) config.sites.push_back(i);
  config.vector_length = 10;
  return config;
}

TEST(ConfigTest, DefaultsResolveToCompleteGraphAndMajority) {
  auto resolved = Base(10).Resolved();
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->degree, 9u);
  EXPECT_EQ(resolved->threshold, 6u);  // > n/2
}

TEST(ConfigTest, SparseBenchParametersAreAccepted) {
  SecAggConfig config = Base(100);
  config.degree = 21;
  auto resolved = config.Resolved();
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->threshold, 12u);
}

TEST(ConfigTest, MinorityThresholdRefusedWithReason) {
  SecAggConfig config = Base(10);
  config.threshold = 5;  // t <= n/2
  const absl::Status status = config.Validate();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("not a strict majority"));
}

TEST(ConfigTest, ThresholdAboveNeighbourhoodRefused) {
  SecAggConfig config = Base(10);
  config.degree = 4;
  config.threshold = 6;
  EXPECT_THAT(config.Validate().message(), HasSubstr("exceeds the k+1=5"));
}

TEST(ConfigTest, DegreeTooSmallForDropoutRefusedWithReason) {
  SecAggConfig config = Base(100);
  config.degree = 4;  // neighbourhoods of 5, t = 3
  config.max_dropout_fraction = 0.3;
  const absl::Status status = config.Validate();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("too small for dropout rate"));
}

TEST(ConfigTest, MalformedConfigsRefused) {
  SecAggConfig no_job = Base(5);
  no_job.job_id.clear();
  EXPECT_FALSE(no_job.Validate().ok());
  EXPECT_FALSE(Base(1).Validate().ok());
  SecAggConfig repeated = Base(5);
  repeated.sites[1] = repeated.sites[0];
  EXPECT_THAT(repeated.Validate().message(), HasSubstr("listed twice"));
  SecAggConfig big_degree = Base(5);
  big_degree.degree = 5;
  EXPECT_FALSE(big_degree.Validate().ok());
  SecAggConfig empty = Base(5);
  empty.vector_length = 0;
  EXPECT_FALSE(empty.Validate().ok());
}

TEST(ConfigTest, EffectiveDegreeIsEvenWhenParticipantsOdd) {
  EXPECT_EQ(EffectiveDegree(3, 9), 4u);
  EXPECT_EQ(EffectiveDegree(3, 10), 3u);
  EXPECT_EQ(EffectiveDegree(20, 7), 6u);
}

TEST(ConfigTest, AbortProbabilityGrowsWithDropout) {
  const double low = AbortProbability(100, 21, 12, 0.05);
  const double high = AbortProbability(100, 21, 12, 0.3);
  EXPECT_LT(low, high);
  EXPECT_LT(AbortProbability(100, 21, 12, 0.1), 1e-3);
  EXPECT_DOUBLE_EQ(AbortProbability(10, 9, 6, 0.0), 0.0);
}

}  // namespace
}  // namespace fedattn::secagg
