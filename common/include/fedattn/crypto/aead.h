// AES-256-GCM authenticated encryption (NIST SP 800-38D) through OpenSSL EVP.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"

namespace fedattn::crypto {

inline constexpr size_t kGcmKeySize = 32;
inline constexpr size_t kGcmNonceSize = 12;
inline constexpr size_t kGcmTagSize = 16;

// Returns ciphertext || 16-byte tag. REQUIRES: a (key, nonce) pair is never used twice.
[[nodiscard]] absl::StatusOr<std::vector<uint8_t>> Aes256GcmSeal(
    std::span<const uint8_t, kGcmKeySize> key, std::span<const uint8_t, kGcmNonceSize> nonce,
    std::span<const uint8_t> aad, std::span<const uint8_t> plaintext);

// Opens ciphertext || tag. UNAUTHENTICATED if the tag does not verify (tampered ciphertext,
// wrong key, nonce or AAD); the plaintext is then never returned.
[[nodiscard]] absl::StatusOr<std::vector<uint8_t>> Aes256GcmOpen(
    std::span<const uint8_t, kGcmKeySize> key, std::span<const uint8_t, kGcmNonceSize> nonce,
    std::span<const uint8_t> aad, std::span<const uint8_t> sealed);

}  // namespace fedattn::crypto
