// Fixed-size secret byte arrays (keys, seeds) that wipe themselves with OPENSSL_cleanse.
#pragma once

#include <openssl/crypto.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace fedattn::crypto {

// A std::array of secret bytes. Copies are allowed (each copy wipes itself on destruction);
// prefer moving. Not thread-safe for concurrent mutation.
template <size_t N>
class SecretBytes {
 public:
  SecretBytes() { bytes_.fill(0); }
  explicit SecretBytes(std::span<const uint8_t, N> bytes) {
    std::copy(bytes.begin(), bytes.end(), bytes_.begin());
  }
  SecretBytes(const SecretBytes&) = default;
  SecretBytes& operator=(const SecretBytes&) = default;
  ~SecretBytes() { OPENSSL_cleanse(bytes_.data(), N); }

  std::span<const uint8_t, N> span() const { return bytes_; }
  std::span<uint8_t, N> mutable_span() { return bytes_; }
  const uint8_t* data() const { return bytes_.data(); }
  uint8_t* data() { return bytes_.data(); }
  static constexpr size_t size() { return N; }

 private:
  std::array<uint8_t, N> bytes_;
};

using Key16 = SecretBytes<16>;
using Key32 = SecretBytes<32>;

}  // namespace fedattn::crypto
