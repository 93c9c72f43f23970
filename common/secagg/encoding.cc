#include "fedattn/secagg/encoding.h"

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "fedattn/common/status_macros.h"

namespace fedattn::secagg {
namespace {

constexpr int64_t kMaxSum = (int64_t{1} << 31) - 1;  // the sum is read as a signed 32-bit word
constexpr size_t kNoiseChunk = 8192;

int64_t LevelsFor(const EncodingOptions& options) {
  if (options.bits == 0) return kMaxSum / options.max_sites;
  return (int64_t{1} << (options.bits - 1)) - 1;
}

}  // namespace

absl::Status EncodingOptions::Validate() const {
  if (!(std::isfinite(clip) && clip > 0.0f)) {
    return absl::InvalidArgumentError("secagg encoding: clip must be finite and > 0");
  }
  if (max_sites == 0) return absl::InvalidArgumentError("secagg encoding: max_sites must be >= 1");
  if (bits == 1 || bits > 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("secagg encoding: bits must be 0 (automatic) or 2..32, got ", bits));
  }
  const int64_t levels = LevelsFor(*this);
  if (levels < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "secagg encoding: the modulus 2^32 is too small for ", max_sites,
        " sites: not even one quantization level per site fits"));
  }
  if (static_cast<uint64_t>(levels) * max_sites > static_cast<uint64_t>(kMaxSum)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "secagg encoding: the modulus 2^32 is too small for %d sites at %d bits: the sum could "
        "reach %d·%d > 2^31-1 and wrap; use at most %d bits or bits = 0",
        max_sites, bits, max_sites, levels,
        static_cast<int>(std::floor(std::log2(static_cast<double>(kMaxSum / max_sites) + 1))) + 1));
  }
  return absl::OkStatus();
}

absl::StatusOr<Encoder> Encoder::Create(const EncodingOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  return Encoder(options, LevelsFor(options));
}

Encoder::Encoder(const EncodingOptions& options, int64_t levels)
    : options_(options), levels_(levels), scale_(static_cast<double>(levels) / options.clip) {}

absl::Status Encoder::Encode(std::span<const float> x, std::span<uint32_t> out,
                             crypto::RandomSource& random) const {
  if (out.size() != x.size()) {
    return absl::InvalidArgumentError("secagg encoding: output and input sizes differ");
  }
  const double clip = options_.clip;
  const double max_level = static_cast<double>(levels_);
  std::vector<uint32_t> noise(std::min(kNoiseChunk, x.size()));
  for (size_t offset = 0; offset < x.size(); offset += kNoiseChunk) {
    const size_t len = std::min(kNoiseChunk, x.size() - offset);
    RETURN_IF_ERROR(random.Fill(std::span(reinterpret_cast<uint8_t*>(noise.data()), len * 4)));
    for (size_t i = 0; i < len; ++i) {
      double v = x[offset + i];
      v = v > clip ? clip : (v < -clip ? -clip : v);  // NaN passes through both tests
      if (std::isnan(v)) v = 0.0;
      // Stochastic rounding: floor(v·scale + u), u ~ U[0,1) from 32 random bits, unbiased.
      const double u = noise[i] * 0x1p-32;
      double q = std::floor(v * scale_ + u);
      q = q > max_level ? max_level : (q < -max_level ? -max_level : q);
      out[offset + i] = static_cast<uint32_t>(static_cast<int32_t>(q));
    }
  }
  return absl::OkStatus();
}

void Encoder::Decode(std::span<const uint32_t> sum, std::span<float> out) const {
  const double inverse = 1.0 / scale_;
  const size_t n = std::min(sum.size(), out.size());
  for (size_t i = 0; i < n; ++i) {
    out[i] = static_cast<float>(static_cast<int32_t>(sum[i]) * inverse);
  }
}

}  // namespace fedattn::secagg
