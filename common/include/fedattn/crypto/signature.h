// Ed25519 signatures (RFC 8032 §5.1) with a party's provisioned identity key.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fedattn/crypto/keys.h"

namespace fedattn::crypto {

using Ed25519Signature = std::array<uint8_t, 64>;
using Ed25519PublicKeyBytes = std::array<uint8_t, 32>;

// Signs `message` with an Ed25519 private key (pure Ed25519, EVP_DigestSign with a null md).
[[nodiscard]] absl::StatusOr<Ed25519Signature> SignEd25519(EVP_PKEY* private_key,
                                                           std::span<const uint8_t> message);

// OK if `signature` is `public_key`'s signature of `message`; UNAUTHENTICATED otherwise.
// `public_key` may be any Ed25519 EVP_PKEY (e.g. X509_get0_pubkey of the party's certificate).
[[nodiscard]] absl::Status VerifyEd25519(EVP_PKEY* public_key, std::span<const uint8_t> message,
                                         std::span<const uint8_t> signature);

// Raw 32-byte public key (RFC 8032 §5.1.5) to and from an EVP_PKEY.
[[nodiscard]] absl::StatusOr<Ed25519PublicKeyBytes> Ed25519RawPublicKey(EVP_PKEY* key);
[[nodiscard]] absl::StatusOr<PKeyPtr> Ed25519PublicKeyFromRaw(std::span<const uint8_t, 32> raw);
[[nodiscard]] absl::StatusOr<PKeyPtr> Ed25519PrivateKeyFromRaw(std::span<const uint8_t, 32> raw);

}  // namespace fedattn::crypto
