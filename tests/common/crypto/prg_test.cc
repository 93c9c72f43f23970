#include "fedattn/crypto/prg.h"

#include <gtest/gtest.h>

#include "fedattn/crypto/digest.h"
#include "test_hex.h"

namespace fedattn::crypto {
namespace {

using testing::FromHex;

// NIST SP 800-38A Appendix F.5.1, CTR-AES128.Encrypt.
TEST(PrgTest, NistSp80038aCtrAes128) {
  const auto key = FromHex("2b7e151628aed2a6abf7158809cf4f3c");
  const auto iv = FromHex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
  const auto plaintext = FromHex(
      "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
      "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710");
  auto prg = Aes128CtrPrg::Create(std::span<const uint8_t, 16>(key.data(), 16),
                                  std::span<const uint8_t, 16>(iv.data(), 16));
  ASSERT_TRUE(prg.ok()) << prg.status();
  std::vector<uint8_t> out(plaintext.size());
  // Two calls: the counter must carry across calls.
  ASSERT_TRUE(prg->Xor(std::span(plaintext).first(20), std::span(out).first(20)).ok());
  ASSERT_TRUE(prg->Xor(std::span(plaintext).subspan(20), std::span(out).subspan(20)).ok());
  EXPECT_EQ(ToHex(out),
            "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff"
            "5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee");
}

TEST(PrgTest, FillIsKeystream) {
  const std::array<uint8_t, 16> key{1, 2, 3};
  auto a = Aes128CtrPrg::Create(key);
  auto b = Aes128CtrPrg::Create(key);
  ASSERT_TRUE(a.ok() && b.ok());
  std::vector<uint8_t> stream(1000), zeros(1000, 0), xored(1000);
  ASSERT_TRUE(a->Fill(stream).ok());
  ASSERT_TRUE(b->Xor(zeros, xored).ok());
  EXPECT_EQ(stream, xored);
}

TEST(PrgTest, DeterministicRandomRepeatsUnderASeed) {
  DeterministicRandom a(42), b(42), c(43);
  std::vector<uint8_t> x(64), y(64), z(64);
  ASSERT_TRUE(a.Fill(x).ok() && b.Fill(y).ok() && c.Fill(z).ok());
  EXPECT_EQ(x, y);
  EXPECT_NE(x, z);
}

TEST(PrgTest, SystemRandomFills) {
  SystemRandom random;
  std::vector<uint8_t> x(64, 0);
  ASSERT_TRUE(random.Fill(x).ok());
  EXPECT_NE(x, std::vector<uint8_t>(64, 0));
}

}  // namespace
}  // namespace fedattn::crypto
