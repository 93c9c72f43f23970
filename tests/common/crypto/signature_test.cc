#include "fedattn/crypto/signature.h"

#include <gtest/gtest.h>

#include "fedattn/crypto/digest.h"
#include "test_hex.h"

namespace fedattn::crypto {
namespace {

using testing::FromHex;

// RFC 8032 §7.1, TEST 1 (empty message).
constexpr char kSecret[] = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
constexpr char kPublic[] = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
constexpr char kSignature[] =
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46b"
    "d25bf5f0595bbe24655141438e7a100b";

TEST(SignatureTest, Rfc8032Test1) {
  const auto secret = FromHex(kSecret);
  auto key = Ed25519PrivateKeyFromRaw(std::span<const uint8_t, 32>(secret.data(), 32));
  ASSERT_TRUE(key.ok()) << key.status();
  auto raw_public = Ed25519RawPublicKey(key->get());
  ASSERT_TRUE(raw_public.ok());
  EXPECT_EQ(ToHex(*raw_public), kPublic);
  auto signature = SignEd25519(key->get(), {});
  ASSERT_TRUE(signature.ok()) << signature.status();
  EXPECT_EQ(ToHex(*signature), kSignature);
  auto public_key = Ed25519PublicKeyFromRaw(*raw_public);
  ASSERT_TRUE(public_key.ok());
  EXPECT_TRUE(VerifyEd25519(public_key->get(), {}, *signature).ok());
}

TEST(SignatureTest, TamperedMessageOrSignatureRejected) {
  auto key = GenerateEd25519Key();
  ASSERT_TRUE(key.ok());
  const std::vector<uint8_t> message = {1, 2, 3, 4};
  auto signature = SignEd25519(key->get(), message);
  ASSERT_TRUE(signature.ok());
  EXPECT_TRUE(VerifyEd25519(key->get(), message, *signature).ok());
  std::vector<uint8_t> other = message;
  other[0] ^= 1;
  EXPECT_EQ(VerifyEd25519(key->get(), other, *signature).code(),
            absl::StatusCode::kUnauthenticated);
  Ed25519Signature bad = *signature;
  bad[10] ^= 0x80;
  EXPECT_EQ(VerifyEd25519(key->get(), message, bad).code(), absl::StatusCode::kUnauthenticated);
  auto stranger = GenerateEd25519Key();
  ASSERT_TRUE(stranger.ok());
  EXPECT_EQ(VerifyEd25519(stranger->get(), message, *signature).code(),
            absl::StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace fedattn::crypto
