#include "fedattn/dp/secure_rng.h"

#include <array>
#include <cmath>
#include <set>

#include "gtest/gtest.h"

namespace fedattn::dp {
namespace {

TEST(SecureRngTest, ZeroKeyIsTheChaCha20TestVector) {
  // RFC 8439, Appendix A.1, test vector #1: all-zero key and nonce, block counter 0; the
  // keystream starts 76 b8 e0 ad a0 f1 3d 90 | 40 5d 6a e5 53 86 bd 28.
  auto rng = SecureRng::CreateForTesting(0);
  ASSERT_TRUE(rng.ok()) << rng.status();
  EXPECT_EQ((*rng)(), 0x903df1a0ade0b876ull);
  EXPECT_EQ((*rng)(), 0x28bd8653e56a5d40ull);
}

TEST(SecureRngTest, FixedSeedsAreReproducibleAndDistinct) {
  auto a = SecureRng::CreateForTesting(42);
  auto b = SecureRng::CreateForTesting(42);
  auto c = SecureRng::CreateForTesting(43);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  for (int i = 0; i < 2000; ++i) {  // crosses several buffer refills
    const uint64_t x = (*a)();
    EXPECT_EQ(x, (*b)());
    EXPECT_NE(x, (*c)());
  }
}

TEST(SecureRngTest, SystemSeededGeneratorsDiffer) {
  auto a = SecureRng::Create();
  auto b = SecureRng::Create();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE((*a)(), (*b)());
}

TEST(SecureRngTest, UniformBelowIsInRangeAndUniform) {
  auto rng = SecureRng::CreateForTesting(7);
  ASSERT_TRUE(rng.ok());
  EXPECT_EQ(rng->UniformBelow(1), 0u);
  constexpr int kBins = 10;
  constexpr int kDraws = 200000;
  std::array<int, kBins> counts{};
  for (int i = 0; i < kDraws; ++i) {
    const uint64_t x = rng->UniformBelow(kBins);
    ASSERT_LT(x, static_cast<uint64_t>(kBins));
    ++counts[x];
  }
  double chi2 = 0;
  for (int c : counts) chi2 += std::pow(c - kDraws / kBins, 2) / (kDraws / kBins);
  EXPECT_LT(chi2, 40.0);  // 9 degrees of freedom; p < 1e-5
  // A modulus just above 2^63 rejects almost half the words: still in range.
  const uint64_t big = (uint64_t{1} << 63) + 12345;
  for (int i = 0; i < 1000; ++i) EXPECT_LT(rng->UniformBelow(big), big);
}

TEST(SecureRngTest, UniformOpen01NeverHitsTheEnds) {
  auto rng = SecureRng::CreateForTesting(9);
  ASSERT_TRUE(rng.ok());
  double sum = 0;
  for (int i = 0; i < 100000; ++i) {
    const double u = rng->UniformOpen01();
    ASSERT_GT(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 100000, 0.5, 0.005);
}

TEST(SecureRngTest, MovedFromGeneratorKeepsItsStream) {
  auto a = SecureRng::CreateForTesting(5);
  auto b = SecureRng::CreateForTesting(5);
  ASSERT_TRUE(a.ok() && b.ok());
  (*a)();
  SecureRng moved = std::move(*a);
  (*b)();
  EXPECT_EQ(moved(), (*b)());
}

}  // namespace
}  // namespace fedattn::dp
