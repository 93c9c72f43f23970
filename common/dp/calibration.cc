#include "fedattn/dp/calibration.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"

namespace fedattn::dp {

absl::Status CalibrationOptions::Validate() const {
  RETURN_IF_ERROR(accountant.Validate());
  if (!(relative_tolerance > 0.0 && relative_tolerance <= 0.1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("relative_tolerance must be in (0, 0.1], got ", relative_tolerance));
  }
  if (!(min_noise_multiplier > 0.0 && min_noise_multiplier < max_noise_multiplier &&
        std::isfinite(max_noise_multiplier))) {
    return absl::InvalidArgumentError(
        absl::StrCat("need 0 < min_noise_multiplier < max_noise_multiplier < inf, got ",
                     min_noise_multiplier, " and ", max_noise_multiplier));
  }
  return absl::OkStatus();
}

absl::StatusOr<PrivacyGuarantee> EpsilonFloor(std::span<const double> orders, double delta) {
  const std::vector<double> zero(orders.size(), 0.0);
  return EpsilonFromRdp(orders, zero, delta);
}

absl::StatusOr<NoiseCalibration> CalibrateNoiseMultiplier(double target_epsilon, double delta,
                                                          double sampling_rate, int64_t steps,
                                                          const CalibrationOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  if (!(target_epsilon > 0.0 && std::isfinite(target_epsilon))) {
    return absl::InvalidArgumentError(
        absl::StrCat("target epsilon must be positive and finite, got ", target_epsilon));
  }
  // With q = 0 or no steps every σ gives the floor: there is nothing to calibrate.
  if (!(sampling_rate > 0.0 && sampling_rate <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling rate must be in (0, 1], got ", sampling_rate));
  }
  if (steps < 1) return absl::InvalidArgumentError(absl::StrCat("steps must be >= 1, got ", steps));
  const std::vector<double>& orders = options.accountant.orders;
  ASSIGN_OR_RETURN(const PrivacyGuarantee floor, EpsilonFloor(orders, delta));
  if (target_epsilon <= floor.epsilon) {
    return absl::OutOfRangeError(absl::StrCat(
        "target epsilon ", target_epsilon, " is infeasible: with this order grid and delta ",
        delta, " no noise level certifies epsilon below ", floor.epsilon, " (the floor, at order ",
        floor.optimal_order, "); raise epsilon or delta, or add larger orders"));
  }

  NoiseCalibration result;
  auto epsilon_at = [&](double sigma) -> absl::StatusOr<PrivacyGuarantee> {
    ++result.evaluations;
    return ComputeEpsilon(sampling_rate, sigma, steps, delta, options.accountant);
  };

  // Bracket: lo misses the target (or is 0), hi meets it. Start at σ = 1 and move by doubling
  // or halving; ε(σ) is monotone, so the bracket is then refined by plain bisection.
  double lo = 0.0;
  double hi = std::clamp(1.0, options.min_noise_multiplier, options.max_noise_multiplier);
  ASSIGN_OR_RETURN(PrivacyGuarantee at_hi, epsilon_at(hi));
  while (at_hi.epsilon > target_epsilon) {
    if (hi >= options.max_noise_multiplier) {
      return absl::OutOfRangeError(absl::StrCat(
          "target epsilon ", target_epsilon, " needs a noise multiplier above ",
          options.max_noise_multiplier, " (epsilon there is ", at_hi.epsilon,
          "; the grid's floor is ", floor.epsilon, ")"));
    }
    lo = hi;
    hi = std::min(2.0 * hi, options.max_noise_multiplier);
    ASSIGN_OR_RETURN(at_hi, epsilon_at(hi));
  }
  if (lo == 0.0) {
    while (true) {
      if (hi <= options.min_noise_multiplier) {
        result.noise_multiplier = hi;
        result.lower_bound = 0.0;
        result.guarantee = std::move(at_hi);
        return result;
      }
      const double down = std::max(0.5 * hi, options.min_noise_multiplier);
      ASSIGN_OR_RETURN(PrivacyGuarantee at_down, epsilon_at(down));
      if (at_down.epsilon > target_epsilon) {
        lo = down;
        break;
      }
      hi = down;
      at_hi = std::move(at_down);
    }
  }
  while (hi - lo > options.relative_tolerance * hi) {
    const double mid = 0.5 * (lo + hi);
    ASSIGN_OR_RETURN(PrivacyGuarantee at_mid, epsilon_at(mid));
    if (at_mid.epsilon <= target_epsilon) {
      hi = mid;
      at_hi = std::move(at_mid);
    } else {
      lo = mid;
    }
  }
  result.noise_multiplier = hi;
  result.lower_bound = lo;
  result.guarantee = std::move(at_hi);
  return result;
}

}  // namespace fedattn::dp
