// SHA-256 digests (OpenSSL EVP) and hex encoding.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "absl/strings/string_view.h"

namespace fedattn::crypto {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest Sha256(std::span<const uint8_t> data);
inline Sha256Digest Sha256(absl::string_view data) {
  return Sha256(std::span(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

// Incremental SHA-256 for streams (a tensor arriving in chunks). Not thread-safe.
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;

  void Update(std::span<const uint8_t> data);
  void Update(absl::string_view data) {
    Update(std::span(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
  }
  // Returns the digest and resets the hasher for a new message.
  Sha256Digest Finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::string ToHex(std::span<const uint8_t> bytes);

}  // namespace fedattn::crypto
