// Pseudorandom generators built on AES-128-CTR (OpenSSL EVP, AES-NI where the CPU has it), and
// the RandomSource seam through which protocol code draws randomness.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <memory>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fedattn::crypto {

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

// AES-128 in counter mode (NIST SP 800-38A §6.5) used as a keystream generator: the stream is
// AES_k(iv), AES_k(iv+1), … with the 128-bit counter incremented big-endian. The key schedule
// lives in the EVP context, which is wiped when the object is destroyed. Not thread-safe.
class Aes128CtrPrg {
 public:
  static constexpr size_t kKeySize = 16;
  static constexpr size_t kIvSize = 16;

  // `iv` is the initial counter block; all zero by default.
  [[nodiscard]] static absl::StatusOr<Aes128CtrPrg> Create(
      std::span<const uint8_t, kKeySize> key, std::span<const uint8_t, kIvSize> iv = kZeroIv);

  // Writes the next out.size() keystream bytes to `out`. Internal errors only.
  [[nodiscard]] absl::Status Fill(std::span<uint8_t> out);
  // XORs the next in.size() keystream bytes into `in`, writing `out` (may alias `in`).
  [[nodiscard]] absl::Status Xor(std::span<const uint8_t> in, std::span<uint8_t> out);

 private:
  static constexpr std::array<uint8_t, kIvSize> kZeroIv{};
  explicit Aes128CtrPrg(CipherCtxPtr ctx) : ctx_(std::move(ctx)) {}
  CipherCtxPtr ctx_;
};

// The cipher "AES-128-CTR", fetched once per process (avoids the implicit fetch on every init).
const EVP_CIPHER* Aes128CtrCipher();

// Where protocol code gets its randomness: the system CSPRNG in production, a seeded stream in
// tests and simulations so that whole runs are reproducible. Implementations need not be
// thread-safe.
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  [[nodiscard]] virtual absl::Status Fill(std::span<uint8_t> out) = 0;
};

// OpenSSL's RAND_bytes (the system CSPRNG).
class SystemRandom final : public RandomSource {
 public:
  absl::Status Fill(std::span<uint8_t> out) override;
};

// A reproducible stream: AES-128-CTR keyed by the first 16 bytes of SHA-256(seed). For tests and
// simulations only; never for production keys.
class DeterministicRandom final : public RandomSource {
 public:
  explicit DeterministicRandom(uint64_t seed);
  absl::Status Fill(std::span<uint8_t> out) override;

 private:
  std::unique_ptr<Aes128CtrPrg> prg_;
};

}  // namespace fedattn::crypto
