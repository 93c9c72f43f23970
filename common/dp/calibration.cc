#include "fedattn/dp/calibration.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>
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
  // ε(σ) decreases towards the floor roughly like a power of σ, so the search runs on
  //   s = log σ,  h(s) = log(ε - floor) - log(target - floor),
  // which is close to linear in s: secant steps find the root in a few accountant evaluations
  // where bisection needs about log2(1/tolerance). Which side of the target a point lies on is
  // always decided by comparing ε itself, so the contract ε(hi) <= target < ε(lo) is exact.
  const std::vector<double>& grid = options.accountant.orders;
  const double log_gap = std::log(target_epsilon - floor.epsilon);
  const double s_min = std::log(options.min_noise_multiplier);
  const double s_max = std::log(options.max_noise_multiplier);
  struct Point {
    double s = 0, h = 0, sigma = 0;
    bool meets = false;  // ε(σ) <= target
    bool full = false;   // ε over the whole grid (else over a subset: an upper bound on it)
    PrivacyGuarantee guarantee;
  };
  AccountantOptions subset;  // the orders near the optimum, once known
  auto evaluate = [&](double s, bool full) -> absl::StatusOr<Point> {
    ++result.evaluations;
    Point p;
    p.s = s;
    p.full = full;
    // The range's ends exactly, not exp(log(end)).
    p.sigma = s <= s_min ? options.min_noise_multiplier : s >= s_max ? options.max_noise_multiplier : std::exp(s);
    ASSIGN_OR_RETURN(p.guarantee, ComputeEpsilon(sampling_rate, p.sigma, steps, delta,
                                                 full ? options.accountant : subset));
    p.meets = p.guarantee.epsilon <= target_epsilon;
    const double excess = p.guarantee.epsilon - floor.epsilon;
    p.h = excess > 0 ? std::log(excess) - log_gap : -std::numeric_limits<double>::infinity();
    // Keep h's sign consistent with the exact comparison when rounding blurs them.
    if (p.meets) p.h = std::min(p.h, 0.0);
    if (!p.meets) p.h = std::max(p.h, std::numeric_limits<double>::min());
    return p;
  };
  // The bracket is [lo, hi] in s; width_goal is the s-width at which hi - lo <= tolerance * hi.
  // (A hair under, so that rounding in exp cannot break the contract.)
  const double width_goal = -0.999 * std::log1p(-options.relative_tolerance);

  // 1. Bracketing, over the whole grid. Start from the σ that the small-q approximation
  // RDP(α) ≈ q²α/σ² per step gives after optimising α: with x = q√T/σ and L = log(1/δ),
  // ε ≈ x² + 2x√L, so x = √(L + ε) - √L (Abadi et al. 2016, §3.1's moments bound, in RDP form).
  // Then step in s by 1.1 h (slope -1, the usual ε ∝ 1/σ, slightly overshot), and by secant
  // extrapolation (growing the step after two) until ε crosses the target.
  const double log_inv_delta = -std::log(delta);
  const double x = std::sqrt(log_inv_delta + target_epsilon) - std::sqrt(log_inv_delta);
  const double guess = sampling_rate * std::sqrt(static_cast<double>(steps)) / x;
  const double s_start = std::isfinite(guess) && guess > 0 ? std::log(guess) : 0.0;
  ASSIGN_OR_RETURN(Point a, evaluate(std::clamp(s_start, s_min, s_max), true));
  std::optional<Point> lo, hi;
  (a.meets ? hi : lo) = a;
  double step = 0;
  int bracket_steps = 0;
  std::optional<Point> previous;
  while (!lo || !hi) {
    const Point& last = lo ? *lo : *hi;  // the only end found so far
    if (!lo && last.s <= s_min) {
      result.noise_multiplier = options.min_noise_multiplier;
      result.lower_bound = 0.0;
      result.guarantee = std::move(hi->guarantee);
      return result;
    }
    if (!hi && last.s >= s_max) {
      return absl::OutOfRangeError(absl::StrCat(
          "target epsilon ", target_epsilon, " needs a noise multiplier above ", options.max_noise_multiplier,
          " (epsilon there is ", last.guarantee.epsilon, "; the grid's floor is ", floor.epsilon, ")"));
    }
    double next = 1.1 * last.h;
    if (previous && std::isfinite(previous->h) && std::isfinite(last.h) && previous->h != last.h) {
      next = -1.2 * last.h * (last.s - previous->s) / (last.h - previous->h);  // secant, overshot
    }
    if (!std::isfinite(next)) next = 1.0;
    const double direction = lo ? 1.0 : -1.0;  // more noise while ε is above the target
    step = std::min(std::max({std::abs(next), 4.0 * width_goal, ++bracket_steps > 2 ? 2.0 * step : 0.0}), 8.0);
    ASSIGN_OR_RETURN(Point b, evaluate(std::clamp(last.s + direction * step, s_min, s_max), true));
    previous = last;
    (b.meets ? hi : lo) = std::move(b);
  }

  // 2. Refinement by ITP (Oliveira & Takahashi 2020, "An Enhancement of the Bisection Method
  // Average Performance Preserving Minmax Optimality", ACM TOMS 47(1), Alg. 1): regula falsi on h,
  // truncated towards the midpoint and projected so that it never needs more than one evaluation
  // beyond bisection, while converging superlinearly where h is smooth (the usual case).
  auto refine = [&](bool full) -> absl::Status {
    const double half_goal = 0.5 * width_goal;
    const double width0 = hi->s - lo->s;
    const double kappa1 = 0.2 / width0;
    const int n_max = std::max(0, static_cast<int>(std::ceil(std::log2(width0 / width_goal)))) + 1;
    for (int j = 0; hi->s - lo->s > width_goal; ++j) {
      const double a = lo->s, b = hi->s, width = b - a, mid = 0.5 * (a + b);
      double s = mid;
      if (std::isfinite(lo->h) && std::isfinite(hi->h) && lo->h > hi->h) {
        const double falsi = (hi->h * a - lo->h * b) / (hi->h - lo->h);
        const double towards_mid = mid >= falsi ? 1.0 : -1.0;
        const double truncation = kappa1 * width * width;
        const double truncated = truncation <= std::abs(mid - falsi) ? falsi + towards_mid * truncation : mid;
        const double radius = std::max(0.0, half_goal * std::ldexp(1.0, n_max - j) - 0.5 * width);
        s = std::abs(truncated - mid) <= radius ? truncated : mid - towards_mid * radius;
      }
      const double margin = 1e-3 * std::min(width, width_goal);
      s = std::clamp(s, a + margin, b - margin);
      // Near the end, over the whole grid: the ends must be whole-grid points anyway.
      ASSIGN_OR_RETURN(Point p, evaluate(s, full || width < 64 * width_goal));
      (p.meets ? hi : lo) = std::move(p);
    }
    return absl::OkStatus();
  };
  // The optimum order moves little across the bracket, and an evaluation costs in proportion to
  // the orders (most for fractional ones at large q): refine over the grid orders between (and
  // next to) the optimal orders at the bracket's ends. ε over a subset is an upper bound on ε over
  // the grid, so a subset point that meets the target meets it over the grid; one that misses it
  // is checked over the whole grid at the end, and if another order certifies it after all, the
  // search goes on from the bracket [last verified lo, that point].
  std::vector<double> sorted(grid.begin(), grid.end());
  std::sort(sorted.begin(), sorted.end());
  Point verified_lo = *lo;  // ε over the whole grid above the target
  for (int round = 0;; ++round) {
    const auto index = [&](double order) {
      return std::lower_bound(sorted.begin(), sorted.end(), order) - sorted.begin();
    };
    const ptrdiff_t a = index(lo->guarantee.optimal_order), b = index(hi->guarantee.optimal_order);
    const ptrdiff_t first = std::min(a, b), last = std::max(a, b);
    const auto begin = std::max<ptrdiff_t>(0, first - 1);
    const auto end = std::min<ptrdiff_t>(static_cast<ptrdiff_t>(sorted.size()), last + 2);
    subset.orders.assign(sorted.begin() + begin, sorted.begin() + end);
    const bool full = round >= 3 || 2 * subset.orders.size() > sorted.size();
    RETURN_IF_ERROR(refine(full));
    if (full) break;
    if (!hi->full) {
      ASSIGN_OR_RETURN(hi, evaluate(hi->s, true));  // for the guarantee it reports
    }
    if (lo->full) break;
    ASSIGN_OR_RETURN(Point check, evaluate(lo->s, true));
    if (!check.meets) {
      lo = std::move(check);
      break;
    }
    hi = std::move(check);
    lo = verified_lo;
  }
  result.noise_multiplier = hi->sigma;
  result.lower_bound = lo->sigma;
  result.guarantee = std::move(hi->guarantee);
  return result;
}

}  // namespace fedattn::dp
