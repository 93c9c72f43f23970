// L2 clipping of a flat update, the sensitivity bound of client-level DP (DP-FedAvg:
// McMahan et al. 2018, "Learning Differentially Private Recurrent Language Models", Alg. 1).
//
// Thread safety: pure functions on caller-owned buffers.
#pragma once

#include <span>

#include "absl/status/statusor.h"

namespace fedattn::dp {

struct ClipResult {
  double norm = 0.0;   // L2 norm before clipping (accumulated in double)
  double scale = 1.0;  // factor applied: min(1, max_norm / norm)
  bool clipped = false;
};

// L2 norm, accumulated in double whatever the element type.
double L2Norm(std::span<const float> values);
double L2Norm(std::span<const double> values);

// Scales `update` in place by min(1, max_norm / ||update||_2), so afterwards its norm is at most
// max_norm (up to float rounding of the scaled elements, < 1e-6 relative).
// Errors: InvalidArgument if max_norm is not positive and finite, or if the update holds a NaN
// or an infinity (it cannot be clipped; the caller should drop it). Nothing is modified then.
[[nodiscard]] absl::StatusOr<ClipResult> ClipToNorm(std::span<float> update, double max_norm);
[[nodiscard]] absl::StatusOr<ClipResult> ClipToNorm(std::span<double> update, double max_norm);

}  // namespace fedattn::dp
