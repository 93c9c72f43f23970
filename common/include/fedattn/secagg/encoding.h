// Encoding of a float update for secure aggregation: clip each coordinate to [-clip, clip],
// scale, round stochastically (unbiased) to an integer in [-L, L] and store it mod 2^32. With
// n·L < 2^31 the sum over n sites, read as a signed 32-bit integer, never wraps, so decoding
// the aggregate is exact up to the quantization.
#pragma once

#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fedattn/crypto/prg.h"

namespace fedattn::secagg {

struct EncodingOptions {
  // Coordinates are clipped to [-clip, clip] (same unit as the update, default 1.0, > 0).
  float clip = 1.0f;
  // The most sites whose encodings are summed (n). Required, >= 1.
  uint32_t max_sites = 0;
  // Bits per site, sign included: L = 2^(bits-1) - 1. 0 (default) picks the most that fit:
  // L = floor((2^31 - 1) / max_sites).
  uint32_t bits = 0;

  // INVALID_ARGUMENT with the reason: a non-positive or non-finite clip, max_sites = 0, bits
  // outside 2..32, or a modulus too small for n: max_sites · L > 2^31 - 1.
  [[nodiscard]] absl::Status Validate() const;
};

// Thread-compatible (const methods are thread-safe).
class Encoder {
 public:
  [[nodiscard]] static absl::StatusOr<Encoder> Create(const EncodingOptions& options);

  // out[i] = SR(clamp(x[i], ±clip) · L / clip) mod 2^32, SR = stochastic rounding with uniform
  // noise from `random`. NaN encodes as 0. REQUIRES: out.size() == x.size().
  [[nodiscard]] absl::Status Encode(std::span<const float> x, std::span<uint32_t> out,
                                    crypto::RandomSource& random) const;
  // out[i] = int32(sum[i]) · clip / L: the sum of the sites' clipped updates.
  void Decode(std::span<const uint32_t> sum, std::span<float> out) const;

  int64_t levels() const { return levels_; }  // L
  double scale() const { return scale_; }     // L / clip

 private:
  Encoder(const EncodingOptions& options, int64_t levels);
  EncodingOptions options_;
  int64_t levels_;
  double scale_;
};

}  // namespace fedattn::secagg
