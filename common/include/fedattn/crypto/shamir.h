// Shamir t-of-n secret sharing (Shamir, CACM 1979) of 32-byte secrets over the prime field
// GF(p), p = 2^61 - 1. A secret is cut into five chunks (4 × 7 bytes + 1 × 4 bytes, each < p)
// and every chunk is shared with its own random polynomial of degree t-1; any t-1 shares are
// uniformly distributed whatever the secret (information-theoretic hiding, chunk by chunk).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "fedattn/crypto/prg.h"
#include "fedattn/crypto/secret_bytes.h"

namespace fedattn::crypto {

inline constexpr uint64_t kShamirPrime = (uint64_t{1} << 61) - 1;
inline constexpr size_t kShamirChunks = 5;
inline constexpr size_t kShamirShareBytes = 4 + 8 * kShamirChunks;  // x, then y chunks

struct ShamirShare {
  uint32_t x = 0;                          // evaluation point, nonzero
  std::array<uint64_t, kShamirChunks> y{}; // each < kShamirPrime
  ~ShamirShare() { OPENSSL_cleanse(y.data(), sizeof(y)); }
  ShamirShare() = default;
  ShamirShare(const ShamirShare&) = default;
  ShamirShare& operator=(const ShamirShare&) = default;
};

// Shares `secret` at the points `xs` (distinct, nonzero) with threshold `threshold`
// (1 <= threshold <= xs.size()). Coefficients come from `random`.
[[nodiscard]] absl::StatusOr<std::vector<ShamirShare>> ShamirSplit(
    std::span<const uint8_t, 32> secret, uint32_t threshold, std::span<const uint32_t> xs,
    RandomSource& random);

// Reconstructs the secret from at least `threshold` shares with distinct points (Lagrange
// interpolation at 0). Shares beyond the first `threshold` are checked against the polynomial:
// DATA_LOSS names the first inconsistent point (a tampered share). INVALID_ARGUMENT for too few
// shares, duplicate or zero points, or values outside the field.
[[nodiscard]] absl::StatusOr<Key32> ShamirCombine(std::span<const ShamirShare> shares,
                                                  uint32_t threshold);

// Fixed-size little-endian encoding (kShamirShareBytes) and its inverse.
void EncodeShamirShare(const ShamirShare& share, std::span<uint8_t, kShamirShareBytes> out);
[[nodiscard]] absl::StatusOr<ShamirShare> DecodeShamirShare(std::span<const uint8_t> bytes);

}  // namespace fedattn::crypto
