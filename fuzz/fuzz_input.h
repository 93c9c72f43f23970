// A cursor over a fuzzer's input bytes, for targets that read a sequence of operations: small
// integers and length-prefixed byte strings. Running out of bytes yields zeros and empty strings,
// so every input, however short, is a valid program. Works the same under libFuzzer and under
// the corpus replay driver (replay_main.cc), unlike clang's FuzzedDataProvider.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

namespace fedattn::fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool empty() const { return pos_ >= size_; }
  size_t remaining() const { return size_ - pos_; }

  uint8_t Byte() { return empty() ? 0 : data_[pos_++]; }
  uint16_t U16() { return static_cast<uint16_t>(Byte() | (Byte() << 8)); }
  uint32_t U32() { return static_cast<uint32_t>(U16()) | (static_cast<uint32_t>(U16()) << 16); }
  // A byte string whose length is a 16-bit little-endian prefix (clamped to what is left).
  std::string Bytes() {
    const size_t length = std::min<size_t>(U16(), remaining());
    std::string out(reinterpret_cast<const char*>(data_ + pos_), length);
    pos_ += length;
    return out;
  }
  // Everything that is left.
  std::string Rest() {
    std::string out(reinterpret_cast<const char*>(data_ + pos_), remaining());
    pos_ = size_;
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace fedattn::fuzz
