// Noise calibration: the smallest noise multiplier σ for which `steps` Poisson-subsampled
// Gaussian steps at sampling rate q meet a target (ε, δ), with the accountant of accountant.h.
//
// ε(σ) decreases with σ (more noise is post-processing), towards a floor that is not zero: with
// RDP = 0 the conversion still costs  min_α [-(log δ + log α)/(α - 1) + log((α - 1)/α)]
// (about 0.0035 at δ = 1e-5 on the default grid, set by its largest order). A target at or
// below that floor cannot be certified with this grid by any σ and is reported as such.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fedattn/dp/accountant.h"

namespace fedattn::dp {

struct CalibrationOptions {
  // The order grid ε is minimised over. Default: DefaultRdpOrders().
  AccountantOptions accountant;
  // The search stops when the bracket [lo, hi] has hi - lo <= relative_tolerance * hi; then
  // ε(hi) <= target < ε(lo). In (0, 0.1]. Default 1e-6.
  double relative_tolerance = 1e-6;
  // Search range for σ. A target that even max_noise_multiplier misses is an error (OutOfRange);
  // if min_noise_multiplier already meets it, min_noise_multiplier is returned.
  // 0 < min < max. Defaults 1e-3 and 1e4.
  double min_noise_multiplier = 1e-3;
  double max_noise_multiplier = 1e4;

  [[nodiscard]] absl::Status Validate() const;
};

struct NoiseCalibration {
  double noise_multiplier = 0.0;  // hi: the calibrated σ, ε(σ) <= target
  double lower_bound = 0.0;       // lo: ε(lo) > target (0 if min_noise_multiplier was returned)
  PrivacyGuarantee guarantee;     // at noise_multiplier, with the grid
  int evaluations = 0;            // accountant evaluations used
};

// The grid's ε floor at δ: the guarantee for zero RDP (σ -> ∞). Errors: InvalidArgument.
[[nodiscard]] absl::StatusOr<PrivacyGuarantee> EpsilonFloor(std::span<const double> orders,
                                                            double delta);

// Finds σ by bracketing from an analytic first guess, then ITP steps (regula falsi on
// log(ε - floor) against log σ, never worse than bisection) over the orders near the optimum,
// with whole-grid evaluations at the ends: about 10 accountant evaluations, 4 of them over the
// whole grid, where bisection needs 20–30. REQUIRES: target_epsilon > 0 finite, δ in (0, 1),
// q in (0, 1], steps >= 1.
// Errors: InvalidArgument for bad arguments or options; OutOfRange when the target is at or
// below EpsilonFloor (message gives the floor) or needs σ > max_noise_multiplier.
[[nodiscard]] absl::StatusOr<NoiseCalibration> CalibrateNoiseMultiplier(
    double target_epsilon, double delta, double sampling_rate, int64_t steps,
    const CalibrationOptions& options = {});

}  // namespace fedattn::dp
