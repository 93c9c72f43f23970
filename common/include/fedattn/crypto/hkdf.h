// HKDF with SHA-256 (RFC 5869), through OpenSSL's EVP_KDF "HKDF".
#pragma once

#include <cstdint>
#include <span>

#include "absl/status/status.h"

namespace fedattn::crypto {

// Extract-then-expand (RFC 5869 §2.2-2.3) into `out` (1..255·32 bytes). An empty `salt` means
// HashLen zero bytes (RFC 5869 §2.2). Internal errors only.
[[nodiscard]] absl::Status HkdfSha256(std::span<const uint8_t> ikm, std::span<const uint8_t> salt,
                                      std::span<const uint8_t> info, std::span<uint8_t> out);

}  // namespace fedattn::crypto
