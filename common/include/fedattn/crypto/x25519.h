// X25519 Diffie-Hellman (RFC 7748 §5, §6.1) through OpenSSL EVP.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "fedattn/crypto/keys.h"
#include "fedattn/crypto/prg.h"
#include "fedattn/crypto/secret_bytes.h"

namespace fedattn::crypto {

using X25519PublicKey = std::array<uint8_t, 32>;

// An X25519 private key and its public key. Move-only; the EVP_PKEY holds the private scalar
// and is freed (and cleansed by OpenSSL) on destruction. Agree() is safe to call concurrently.
class X25519PrivateKey {
 public:
  // A fresh key from 32 bytes of `random` (clamping per RFC 7748 §5 is done by OpenSSL).
  [[nodiscard]] static absl::StatusOr<X25519PrivateKey> Generate(RandomSource& random);
  // The key with the given 32-byte private scalar (RFC 7748 §6.1 vectors, reconstructed keys).
  [[nodiscard]] static absl::StatusOr<X25519PrivateKey> FromRaw(std::span<const uint8_t, 32> raw);

  const X25519PublicKey& public_key() const { return public_key_; }
  // The 32 raw private bytes (for secret sharing). Callers keep them in a SecretBytes.
  [[nodiscard]] absl::StatusOr<Key32> RawPrivate() const;

  // The shared secret X25519(private, peer) (RFC 7748 §6.1). INVALID_ARGUMENT if `peer` is a
  // low-order point (the all-zero output OpenSSL refuses).
  [[nodiscard]] absl::StatusOr<Key32> Agree(const X25519PublicKey& peer) const;

 private:
  X25519PrivateKey(PKeyPtr key, const X25519PublicKey& public_key)
      : key_(std::move(key)), public_key_(public_key) {}
  PKeyPtr key_;
  X25519PublicKey public_key_;
};

}  // namespace fedattn::crypto
