#include "fedattn/crypto/aead.h"

#include <gtest/gtest.h>

#include "fedattn/crypto/digest.h"
#include "test_hex.h"

namespace fedattn::crypto {
namespace {

using testing::FromHex;

// McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13 and 14 (AES-256, zero
// key and IV).
TEST(AeadTest, GcmSpecTestCase13EmptyPlaintext) {
  const std::array<uint8_t, 32> key{};
  const std::array<uint8_t, 12> nonce{};
  auto sealed = Aes256GcmSeal(key, nonce, {}, {});
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(ToHex(*sealed), "530f8afbc74536b9a963b4f1c4cb738b");
}

TEST(AeadTest, GcmSpecTestCase14) {
  const std::array<uint8_t, 32> key{};
  const std::array<uint8_t, 12> nonce{};
  const std::vector<uint8_t> plaintext(16, 0);
  auto sealed = Aes256GcmSeal(key, nonce, {}, plaintext);
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(ToHex(*sealed), "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919");
  auto opened = Aes256GcmOpen(key, nonce, {}, *sealed);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, plaintext);
}

TEST(AeadTest, TamperingIsDetected) {
  std::array<uint8_t, 32> key{};
  key[0] = 9;
  const std::array<uint8_t, 12> nonce{1};
  const std::vector<uint8_t> aad = {1, 2, 3}, plaintext = {4, 5, 6, 7};
  auto sealed = Aes256GcmSeal(key, nonce, aad, plaintext);
  ASSERT_TRUE(sealed.ok());
  for (size_t i = 0; i < sealed->size(); ++i) {
    std::vector<uint8_t> bad = *sealed;
    bad[i] ^= 0x01;
    EXPECT_EQ(Aes256GcmOpen(key, nonce, aad, bad).status().code(),
              absl::StatusCode::kUnauthenticated)
        << "byte " << i;
  }
  const std::vector<uint8_t> other_aad = {1, 2, 4};
  EXPECT_EQ(Aes256GcmOpen(key, nonce, other_aad, *sealed).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Aes256GcmOpen(key, nonce, aad, std::vector<uint8_t>(5)).status().code(),
            absl::StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace fedattn::crypto
