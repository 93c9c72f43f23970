#include "fedattn/crypto/x25519.h"

#include <gtest/gtest.h>

#include "fedattn/crypto/digest.h"
#include "test_hex.h"

namespace fedattn::crypto {
namespace {

using testing::FromHex;

// RFC 7748 §6.1.
constexpr char kAlicePrivate[] = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
constexpr char kAlicePublic[] = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
constexpr char kBobPrivate[] = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
constexpr char kBobPublic[] = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
constexpr char kShared[] = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

X25519PrivateKey Load(const char* hex) {
  const std::vector<uint8_t> raw = FromHex(hex);
  auto key = X25519PrivateKey::FromRaw(std::span<const uint8_t, 32>(raw.data(), 32));
  EXPECT_TRUE(key.ok()) << key.status();
  return std::move(key).value();
}

TEST(X25519Test, Rfc7748PublicKeys) {
  EXPECT_EQ(ToHex(Load(kAlicePrivate).public_key()), kAlicePublic);
  EXPECT_EQ(ToHex(Load(kBobPrivate).public_key()), kBobPublic);
}

TEST(X25519Test, Rfc7748SharedSecretBothWays) {
  const X25519PrivateKey alice = Load(kAlicePrivate);
  const X25519PrivateKey bob = Load(kBobPrivate);
  auto ab = alice.Agree(bob.public_key());
  auto ba = bob.Agree(alice.public_key());
  ASSERT_TRUE(ab.ok()) << ab.status();
  ASSERT_TRUE(ba.ok()) << ba.status();
  EXPECT_EQ(ToHex(ab->span()), kShared);
  EXPECT_EQ(ToHex(ba->span()), kShared);
}

TEST(X25519Test, LowOrderPointRefused) {
  const X25519PrivateKey alice = Load(kAlicePrivate);
  X25519PublicKey zero{};  // the point 0 has order 4: the shared secret would be all zero
  auto shared = alice.Agree(zero);
  EXPECT_EQ(shared.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(X25519Test, GenerateIsDeterministicUnderASeed) {
  DeterministicRandom a(7), b(7);
  auto ka = X25519PrivateKey::Generate(a);
  auto kb = X25519PrivateKey::Generate(b);
  ASSERT_TRUE(ka.ok() && kb.ok());
  EXPECT_EQ(ka->public_key(), kb->public_key());
  auto raw = ka->RawPrivate();
  ASSERT_TRUE(raw.ok());
  auto again = X25519PrivateKey::FromRaw(raw->span());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->public_key(), ka->public_key());
}

}  // namespace
}  // namespace fedattn::crypto
