#include "fedattn/dp/clipping.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace fedattn::dp {
namespace {

template <typename T>
double SumOfSquares(std::span<const T> values) {
  // Four accumulators: independent dependency chains vectorise, and partial sums stay smaller.
  double acc[4] = {0.0, 0.0, 0.0, 0.0};
  size_t i = 0;
  for (; i + 4 <= values.size(); i += 4) {
    for (int k = 0; k < 4; ++k) {
      const double v = values[i + k];
      acc[k] += v * v;
    }
  }
  for (; i < values.size(); ++i) acc[0] += static_cast<double>(values[i]) * values[i];
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

template <typename T>
absl::StatusOr<ClipResult> Clip(std::span<T> update, double max_norm) {
  if (!(max_norm > 0.0 && std::isfinite(max_norm))) {
    return absl::InvalidArgumentError(
        absl::StrCat("clipping norm must be positive and finite, got ", max_norm));
  }
  ClipResult result;
  const double squares = SumOfSquares(std::span<const T>(update));
  if (std::isfinite(squares)) {
    result.norm = std::sqrt(squares);
  } else {
    // Either an element is not finite, or (double input only) finite squares overflowed.
    double max_abs = 0.0;
    for (size_t i = 0; i < update.size(); ++i) {
      if (!std::isfinite(update[i])) {
        return absl::InvalidArgumentError(
            absl::StrCat("update element ", i, " is not finite; it cannot be clipped"));
      }
      max_abs = std::max(max_abs, std::fabs(static_cast<double>(update[i])));
    }
    double scaled = 0.0;
    for (const T v : update) scaled += (v / max_abs) * (v / max_abs);
    result.norm = max_abs * std::sqrt(scaled);
  }
  if (result.norm > max_norm) {
    result.scale = max_norm / result.norm;
    result.clipped = true;
    for (T& v : update) v = static_cast<T>(v * result.scale);
  }
  return result;
}

}  // namespace

double L2Norm(std::span<const float> values) { return std::sqrt(SumOfSquares(values)); }
double L2Norm(std::span<const double> values) { return std::sqrt(SumOfSquares(values)); }

absl::StatusOr<ClipResult> ClipToNorm(std::span<float> update, double max_norm) {
  return Clip(update, max_norm);
}
absl::StatusOr<ClipResult> ClipToNorm(std::span<double> update, double max_norm) {
  return Clip(update, max_norm);
}

}  // namespace fedattn::dp
