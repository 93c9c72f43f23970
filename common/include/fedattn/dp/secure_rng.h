// The random bit source for DP noise: a ChaCha20 keystream (RFC 8439 §2.4, via OpenSSL EVP)
// keyed by 32 bytes from OpenSSL's RAND_bytes, so that the noise cannot be predicted or replayed
// by anyone who learns a seed, a time stamp or a process id. Tests may fix the key.
//
// Satisfies std::uniform_random_bit_generator (64-bit words). Move-only; key and buffered
// keystream are wiped (OPENSSL_cleanse) on destruction. Not thread-safe: one per thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>

#include "absl/status/statusor.h"

namespace fedattn::dp {

class SecureRng {
 public:
  using result_type = uint64_t;
  static constexpr size_t kKeySize = 32;

  // Keyed from RAND_bytes. Errors: Internal when the system CSPRNG or the cipher fails.
  [[nodiscard]] static absl::StatusOr<SecureRng> Create();
  // Deterministic stream for tests and reproducible simulations. Never use in production.
  [[nodiscard]] static absl::StatusOr<SecureRng> CreateForTesting(uint64_t seed);
  [[nodiscard]] static absl::StatusOr<SecureRng> CreateFromKey(
      std::span<const uint8_t, kKeySize> key);

  SecureRng(SecureRng&&) noexcept;
  SecureRng& operator=(SecureRng&&) noexcept;
  ~SecureRng();

  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return ~result_type{0}; }
  // Next 64 uniformly random bits. A cipher failure after a successful Create cannot happen
  // with a valid context; if it did, the process aborts rather than emit predictable noise.
  result_type operator()();

  // Uniform integer in [0, n). REQUIRES: n >= 1. Exact (rejection sampling, no modulo bias).
  uint64_t UniformBelow(uint64_t n);
  // Uniform double in (0, 1): a random 53-bit mantissa, offset by half an ulp so 0 never occurs.
  double UniformOpen01();

 private:
  struct State;
  explicit SecureRng(std::unique_ptr<State> state);
  void Refill();

  std::unique_ptr<State> state_;
};

}  // namespace fedattn::dp
