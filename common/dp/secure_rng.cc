#include "fedattn/dp/secure_rng.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/status/status.h"

namespace fedattn::dp {
namespace {

struct CtxDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};

// 4 KiB of keystream per EVP call amortises the call overhead; ChaCha20 runs at GB/s.
constexpr size_t kBufferWords = 512;

}  // namespace

struct SecureRng::State {
  std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter> ctx;
  std::array<uint64_t, kBufferWords> buffer{};
  size_t next = kBufferWords;  // index of the next unused word; kBufferWords means empty

  ~State() { OPENSSL_cleanse(buffer.data(), sizeof(buffer)); }
};

absl::StatusOr<SecureRng> SecureRng::CreateFromKey(std::span<const uint8_t, kKeySize> key) {
  auto state = std::make_unique<State>();
  state->ctx.reset(EVP_CIPHER_CTX_new());
  // RFC 8439 §2.4 with OpenSSL's 16-byte IV (32-bit block counter + 96-bit nonce), all zero: each
  // key is used for exactly one stream, so a fixed nonce is safe.
  const std::array<uint8_t, 16> iv{};
  if (state->ctx == nullptr ||
      EVP_EncryptInit_ex(state->ctx.get(), EVP_chacha20(), nullptr, key.data(), iv.data()) != 1) {
    return absl::InternalError("cannot initialise ChaCha20 for the DP noise generator");
  }
  return SecureRng(std::move(state));
}

absl::StatusOr<SecureRng> SecureRng::Create() {
  std::array<uint8_t, kKeySize> key;
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1) {
    return absl::InternalError("RAND_bytes failed to seed the DP noise generator");
  }
  auto rng = CreateFromKey(key);
  OPENSSL_cleanse(key.data(), key.size());
  return rng;
}

absl::StatusOr<SecureRng> SecureRng::CreateForTesting(uint64_t seed) {
  std::array<uint8_t, kKeySize> key{};
  for (int i = 0; i < 8; ++i) key[i] = static_cast<uint8_t>(seed >> (8 * i));  // little-endian
  return CreateFromKey(key);
}

SecureRng::SecureRng(std::unique_ptr<State> state) : state_(std::move(state)) {}
SecureRng::SecureRng(SecureRng&&) noexcept = default;
SecureRng& SecureRng::operator=(SecureRng&&) noexcept = default;
SecureRng::~SecureRng() = default;

void SecureRng::Refill() {
  // Encrypting zeros yields the raw keystream.
  std::memset(state_->buffer.data(), 0, sizeof(state_->buffer));
  auto* bytes = reinterpret_cast<unsigned char*>(state_->buffer.data());
  int written = 0;
  if (EVP_EncryptUpdate(state_->ctx.get(), bytes, &written, bytes,
                        static_cast<int>(sizeof(state_->buffer))) != 1 ||
      written != static_cast<int>(sizeof(state_->buffer))) {
    std::fputs("fedattn: ChaCha20 keystream failed in the DP noise generator\n", stderr);
    std::abort();
  }
  state_->next = 0;
}

SecureRng::result_type SecureRng::operator()() {
  if (state_->next == kBufferWords) Refill();
  const uint64_t word = state_->buffer[state_->next];
  state_->buffer[state_->next++] = 0;  // used randomness is not left lying around
  return word;
}

uint64_t SecureRng::UniformBelow(uint64_t n) {
  // Rejection from the largest multiple of n that fits in 2^64 (no modulo bias).
  const uint64_t limit = max() - (max() % n + 1) % n;  // last accepted value
  while (true) {
    const uint64_t x = (*this)();
    if (x <= limit) return x % n;
  }
}

double SecureRng::UniformOpen01() {
  return (static_cast<double>((*this)() >> 11) + 0.5) * 0x1.0p-53;
}

}  // namespace fedattn::dp
