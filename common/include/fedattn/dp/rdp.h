// Rényi differential privacy (RDP) of one step of the Poisson-subsampled Gaussian mechanism.
//
// One step: every record is included independently with probability q (Poisson sampling), the
// included records' contributions, each clipped to L2 norm C, are summed, and N(0, σ²C²) noise
// is added per coordinate; σ is the noise multiplier. Adjacency is add/remove of one record.
// The value returned is ε(α) such that the step is (α, ε(α))-RDP (Mironov 2017), computed
// exactly as Opacus and TF Privacy compute it (Mironov, Talwar, Zhang 2019, "Rényi Differential
// Privacy of the Sampled Gaussian Mechanism", Sec. 3.3):
//   * integer α: the closed-form binomial sum, evaluated in log space;
//   * fractional α: the two convergent series with log erfc, truncated where Opacus'
//     `_compute_log_a_for_frac_alpha` truncates them (every later term below e^-30).
// RDP composes additively over steps and over mechanisms at the same order.
//
// Thread safety: pure functions, safe to call concurrently.
#pragma once

#include "absl/status/statusor.h"

namespace fedattn::dp {

// Largest order accepted anywhere in the accountant (cost of an integer order grows linearly).
inline constexpr double kMaxRdpOrder = 1e5;

// INVALID_ARGUMENT unless 0 <= sampling_rate <= 1 and noise_multiplier is positive and finite.
[[nodiscard]] absl::Status ValidateSubsampledGaussian(double sampling_rate, double noise_multiplier);

// RDP ε(α) of ONE step of the subsampled Gaussian with sampling rate `sampling_rate` (q) and
// noise multiplier `noise_multiplier` (σ) at order `order` (α).
// REQUIRES: 0 <= q <= 1, σ > 0 and finite, 1 < α <= kMaxRdpOrder; otherwise InvalidArgument.
// q = 0 gives 0; q = 1 gives the plain Gaussian's α / (2σ²). Always >= 0; may be +inf only when
// the true value overflows a double. Numerically stable (log space) for q in [1e-6, 1],
// σ in [0.3, 100] and every default order; valid, but slower for small α, far beyond.
[[nodiscard]] absl::StatusOr<double> SubsampledGaussianRdp(double sampling_rate,
                                                           double noise_multiplier,
                                                           double order);

}  // namespace fedattn::dp
