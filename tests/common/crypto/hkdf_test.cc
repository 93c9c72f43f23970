#include "fedattn/crypto/hkdf.h"

#include <gtest/gtest.h>

#include "fedattn/crypto/digest.h"
#include "test_hex.h"

namespace fedattn::crypto {
namespace {

using testing::FromHex;

std::string Derive(const std::string& ikm, const std::string& salt, const std::string& info,
                   size_t length) {
  const auto i = FromHex(ikm), s = FromHex(salt), f = FromHex(info);
  std::vector<uint8_t> out(length);
  EXPECT_TRUE(HkdfSha256(i, s, f, out).ok());
  return ToHex(out);
}

// RFC 5869 Appendix A.1.
TEST(HkdfTest, Rfc5869Case1) {
  EXPECT_EQ(Derive("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "000102030405060708090a0b0c",
                   "f0f1f2f3f4f5f6f7f8f9", 42),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

// RFC 5869 Appendix A.3: empty salt and info.
TEST(HkdfTest, Rfc5869Case3) {
  EXPECT_EQ(Derive("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "", 42),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

TEST(HkdfTest, InfoSeparatesOutputs) {
  EXPECT_NE(Derive("01", "", "aa", 16), Derive("01", "", "ab", 16));
}

TEST(HkdfTest, RefusesBadLength) {
  std::vector<uint8_t> ikm(4, 1), out(255 * 32 + 1);
  EXPECT_EQ(HkdfSha256(ikm, {}, {}, out).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fedattn::crypto
