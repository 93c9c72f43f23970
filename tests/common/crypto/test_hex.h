// Hex helpers for known-answer tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fedattn::crypto::testing {

inline std::vector<uint8_t> FromHex(const std::string& hex) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

}  // namespace fedattn::crypto::testing
