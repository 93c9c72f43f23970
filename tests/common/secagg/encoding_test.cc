#include "fedattn/secagg/encoding.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "fedattn/secagg/masking.h"

namespace fedattn::secagg {
namespace {

using ::testing::HasSubstr;

Encoder Make(float clip, uint32_t sites, uint32_t bits = 0) {
  EncodingOptions options;
  options.clip = clip;
  options.max_sites = sites;
  options.bits = bits;
  auto encoder = Encoder::Create(options);
  EXPECT_TRUE(encoder.ok()) << encoder.status();
  return std::move(encoder).value();
}

TEST(EncodingTest, AutomaticLevelsFillTheHeadroom) {
  const Encoder encoder = Make(1.0f, 100);
  EXPECT_EQ(encoder.levels(), ((int64_t{1} << 31) - 1) / 100);
  EXPECT_EQ(Make(1.0f, 1, 16).levels(), 32767);
}

TEST(EncodingTest, RoundTripWithinOneStepAndClipped) {
  const Encoder encoder = Make(2.0f, 4, 16);
  const std::vector<float> x = {0.0f, 1.0f, -1.5f, 2.0f, -2.0f, 5.0f, -7.0f, 1e-6f, NAN};
  std::vector<uint32_t> q(x.size());
  crypto::DeterministicRandom random(1);
  ASSERT_TRUE(encoder.Encode(x, q, random).ok());
  std::vector<float> back(x.size());
  encoder.Decode(q, back);
  const double step = 1.0 / encoder.scale();
  for (size_t i = 0; i + 1 < x.size(); ++i) {
    const double clipped = std::clamp(static_cast<double>(x[i]), -2.0, 2.0);
    EXPECT_NEAR(back[i], clipped, step + 1e-6) << i;
  }
  EXPECT_EQ(back.back(), 0.0f);  // NaN encodes as 0
}

TEST(EncodingTest, StochasticRoundingIsUnbiased) {
  const Encoder encoder = Make(1.0f, 1, 4);  // L = 7: coarse steps of 1/7
  const float value = 0.3f;                  // 2.1 steps
  constexpr int kTrials = 20000;
  std::vector<float> x(kTrials, value);
  std::vector<uint32_t> q(kTrials);
  crypto::DeterministicRandom random(2);
  ASSERT_TRUE(encoder.Encode(x, q, random).ok());
  double mean = 0;
  for (uint32_t w : q) mean += static_cast<int32_t>(w);
  mean /= kTrials;
  EXPECT_NEAR(mean, 2.1, 0.02);  // sd of the mean ≈ 0.46/√20000 ≈ 0.003
}

TEST(EncodingTest, SumOfNSitesAtTheExtremesDoesNotWrap) {
  constexpr uint32_t kSites = 100;
  const Encoder encoder = Make(1.0f, kSites);
  crypto::DeterministicRandom random(3);
  for (float extreme : {1.0f, -1.0f}) {
    std::vector<uint32_t> sum(4, 0), q(4);
    const std::vector<float> x(4, extreme);
    for (uint32_t i = 0; i < kSites; ++i) {
      ASSERT_TRUE(encoder.Encode(x, q, random).ok());
      AddWords(sum, q);
    }
    std::vector<float> decoded(4);
    encoder.Decode(sum, decoded);
    EXPECT_NEAR(decoded[0], extreme * kSites, 1e-4);
  }
}

TEST(EncodingTest, ModulusTooSmallForNRefusedWithReason) {
  EncodingOptions options;
  options.max_sites = 100;
  options.bits = 26;  // 100 · (2^25 - 1) > 2^31 - 1
  const absl::Status status = options.Validate();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("too small for 100 sites"));
  options.bits = 25;
  EXPECT_TRUE(options.Validate().ok()) << options.Validate();
}

TEST(EncodingTest, BadOptionsRefused) {
  EncodingOptions options;
  options.max_sites = 0;
  EXPECT_FALSE(options.Validate().ok());
  options.max_sites = 3;
  options.clip = 0.0f;
  EXPECT_FALSE(options.Validate().ok());
  options.clip = INFINITY;
  EXPECT_FALSE(options.Validate().ok());
  options.clip = 1.0f;
  options.bits = 1;
  EXPECT_FALSE(options.Validate().ok());
  options.bits = 33;
  EXPECT_FALSE(options.Validate().ok());
}

}  // namespace
}  // namespace fedattn::secagg
