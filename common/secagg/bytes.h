// Private to common/secagg: little-endian byte strings for HKDF info, AAD and signed messages.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/strings/string_view.h"

namespace fedattn::secagg::internal {

class ByteWriter {
 public:
  ByteWriter& U32(uint32_t v) {
    for (int i = 0; i < 4; ++i) bytes_.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }
  ByteWriter& U64(uint64_t v) {
    for (int i = 0; i < 8; ++i) bytes_.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }
  // Length-prefixed (u32) so that concatenations are unambiguous.
  ByteWriter& Str(absl::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    bytes_.insert(bytes_.end(), s.begin(), s.end());
    return *this;
  }
  ByteWriter& Bytes(std::span<const uint8_t> b) {
    bytes_.insert(bytes_.end(), b.begin(), b.end());
    return *this;
  }
  // A label, then the job and round every derivation is bound to.
  static ByteWriter Context(absl::string_view label, absl::string_view job_id, uint64_t round) {
    ByteWriter w;
    w.Str(label).Str(job_id).U64(round);
    return w;
  }
  std::span<const uint8_t> span() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

}  // namespace fedattn::secagg::internal
