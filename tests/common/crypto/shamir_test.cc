#include "fedattn/crypto/shamir.h"

#include <gtest/gtest.h>

#include <numeric>

namespace fedattn::crypto {
namespace {

Key32 RandomSecret(uint64_t seed) {
  DeterministicRandom random(seed);
  Key32 secret;
  EXPECT_TRUE(random.Fill(secret.mutable_span()).ok());
  return secret;
}

std::vector<uint32_t> Points(uint32_t n) {
  std::vector<uint32_t> xs(n);
  std::iota(xs.begin(), xs.end(), 1);
  return xs;
}

TEST(ShamirTest, AnyTSharesReconstruct) {
  DeterministicRandom random(1);
  const Key32 secret = RandomSecret(2);
  auto shares = ShamirSplit(secret.span(), 3, Points(5), random);
  ASSERT_TRUE(shares.ok()) << shares.status();
  for (size_t a = 0; a < 5; ++a) {
    for (size_t b = a + 1; b < 5; ++b) {
      for (size_t c = b + 1; c < 5; ++c) {
        const std::vector<ShamirShare> subset = {(*shares)[a], (*shares)[b], (*shares)[c]};
        auto got = ShamirCombine(subset, 3);
        ASSERT_TRUE(got.ok()) << got.status();
        EXPECT_TRUE(std::equal(got->span().begin(), got->span().end(), secret.span().begin()));
      }
    }
  }
}

TEST(ShamirTest, AllOnesSecretAndLargePoints) {
  DeterministicRandom random(3);
  Key32 secret;
  std::fill(secret.data(), secret.data() + 32, 0xff);
  const std::vector<uint32_t> xs = {0xfffffffeu, 7, 0x80000000u, 12};
  auto shares = ShamirSplit(secret.span(), 4, xs, random);
  ASSERT_TRUE(shares.ok());
  auto got = ShamirCombine(*shares, 4);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(std::equal(got->span().begin(), got->span().end(), secret.span().begin()));
}

TEST(ShamirTest, FewerThanTSharesRefused) {
  DeterministicRandom random(4);
  auto shares = ShamirSplit(RandomSecret(5).span(), 3, Points(4), random);
  ASSERT_TRUE(shares.ok());
  shares->resize(2);
  EXPECT_EQ(ShamirCombine(*shares, 3).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ShamirTest, TamperedExtraShareDetected) {
  DeterministicRandom random(6);
  auto shares = ShamirSplit(RandomSecret(7).span(), 3, Points(5), random);
  ASSERT_TRUE(shares.ok());
  (*shares)[4].y[2] = ((*shares)[4].y[2] + 1) % kShamirPrime;
  EXPECT_EQ(ShamirCombine(*shares, 3).status().code(), absl::StatusCode::kDataLoss);
}

TEST(ShamirTest, SingleTamperedShareChangesTheResult) {
  // With exactly t shares a tampered share cannot be detected here: the protocol checks the
  // result against a commitment or a public key. It must at least not return the secret.
  DeterministicRandom random(8);
  const Key32 secret = RandomSecret(9);
  auto shares = ShamirSplit(secret.span(), 3, Points(3), random);
  ASSERT_TRUE(shares.ok());
  (*shares)[0].y[0] ^= 1;
  auto got = ShamirCombine(*shares, 3);
  if (got.ok()) {
    EXPECT_FALSE(std::equal(got->span().begin(), got->span().end(), secret.span().begin()));
  }
}

TEST(ShamirTest, BadParametersRefused) {
  DeterministicRandom random(10);
  const Key32 secret = RandomSecret(11);
  EXPECT_FALSE(ShamirSplit(secret.span(), 0, Points(3), random).ok());
  EXPECT_FALSE(ShamirSplit(secret.span(), 4, Points(3), random).ok());
  const std::vector<uint32_t> repeated = {1, 2, 2};
  EXPECT_FALSE(ShamirSplit(secret.span(), 2, repeated, random).ok());
  const std::vector<uint32_t> zero = {0, 1, 2};
  EXPECT_FALSE(ShamirSplit(secret.span(), 2, zero, random).ok());
}

TEST(ShamirTest, EncodeDecodeRoundTrip) {
  DeterministicRandom random(12);
  auto shares = ShamirSplit(RandomSecret(13).span(), 2, Points(2), random);
  ASSERT_TRUE(shares.ok());
  std::array<uint8_t, kShamirShareBytes> bytes;
  EncodeShamirShare((*shares)[1], bytes);
  auto decoded = DecodeShamirShare(bytes);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->x, (*shares)[1].x);
  EXPECT_EQ(decoded->y, (*shares)[1].y);
  bytes[4 + 7] = 0xff;  // top byte of the first chunk: value >= p
  EXPECT_FALSE(DecodeShamirShare(bytes).ok());
  EXPECT_FALSE(DecodeShamirShare(std::span(bytes).first(10)).ok());
}

TEST(ShamirTest, FewerThanTSharesLookUniform) {
  // t-1 shares of two different secrets under the same coefficients' seed differ only by
  // randomness: check the first-chunk values of one share are spread over the field.
  DeterministicRandom random(14);
  const Key32 secret = RandomSecret(15);
  int high = 0;
  constexpr int kTrials = 2000;
  for (int i = 0; i < kTrials; ++i) {
    auto shares = ShamirSplit(secret.span(), 2, Points(2), random);
    ASSERT_TRUE(shares.ok());
    high += (*shares)[0].y[0] > kShamirPrime / 2 ? 1 : 0;
  }
  EXPECT_NEAR(high, kTrials / 2, 5 * std::sqrt(kTrials / 4.0));
}

}  // namespace
}  // namespace fedattn::crypto
