#include "fedattn/dp/rdp.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"

namespace fedattn::dp {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// Opacus and TF Privacy stop the fractional-order series once both new terms are below e^-30;
// stopping at the same place is what makes our values theirs, not merely close to them.
constexpr double kSeriesLogCutoff = -30.0;
// A guard only: in the documented range the series needs at most ~2e4 terms (q = 0.5, σ = 100,
// α = 1.1); far outside it (σ ~ 1e6 with q near 1/2) it could need many millions.
constexpr int64_t kMaxSeriesTerms = 50'000'000;

// log(e^a + e^b).
double LogAdd(double a, double b) {
  if (a < b) std::swap(a, b);
  if (b == kNegInf) return a;
  return a + std::log1p(std::exp(b - a));
}

// log(e^x - 1) for x > 0, without overflow for large x or cancellation for small x.
double LogExpm1(double x) {
  if (x > 36.0) return x + std::log1p(-std::exp(-x));
  return std::log(std::expm1(x));
}

// log(1 + e^x).
double Log1pExp(double x) {
  if (x > 36.0) return x + std::log1p(std::exp(-x));
  return std::log1p(std::exp(x));
}

// log(erfc(x)), finite for every finite x. erfc underflows near x = 26.5, so past 25 the
// asymptotic expansion is used (Abramowitz & Stegun 7.1.23); 10 terms there are exact to
// double precision. This plays the role of Opacus' log(2) + scipy.special.log_ndtr(-x√2).
double LogErfc(double x) {
  if (x < 25.0) return std::log(std::erfc(x));
  const double inv_two_x2 = 1.0 / (2.0 * x * x);
  double term = 1.0;
  double sum = 1.0;
  for (int k = 1; k <= 10; ++k) {
    term *= -(2.0 * k - 1.0) * inv_two_x2;
    sum += term;
  }
  return -x * x - std::log(x) - 0.5 * std::log(std::numbers::pi) + std::log(sum);
}

// A real number kept as sign and log|x|: the series terms span hundreds of orders of magnitude.
struct SignedLog {
  int sign = 0;  // 0 means the value is zero.
  double log_abs = kNegInf;

  void Add(int term_sign, double log_term) {
    if (log_term == kNegInf) return;
    if (sign == 0) {
      sign = term_sign;
      log_abs = log_term;
    } else if (sign == term_sign) {
      log_abs = LogAdd(log_abs, log_term);
    } else if (log_abs == log_term) {
      sign = 0;
      log_abs = kNegInf;
    } else {
      // log(e^hi - e^lo) = hi + log(1 - e^(lo-hi)); the larger magnitude keeps its sign.
      const double hi = std::max(log_abs, log_term);
      const double lo = std::min(log_abs, log_term);
      if (log_term > log_abs) sign = term_sign;
      log_abs = hi + std::log(-std::expm1(lo - hi));
    }
  }
};

// log A_α for integer α (Mironov, Talwar, Zhang 2019, Sec. 3.3, integer α):
//   A_α = Σ_k C(α,k) (1-q)^(α-k) q^k exp((k²-k)/(2σ²)).
// The binomial weights sum to 1, so A_α - 1 = Σ_{k≥2} C(α,k)(1-q)^(α-k) q^k expm1((k²-k)/(2σ²))
// (the k = 0, 1 terms vanish). Summing that positive series and taking log1p gives the same value
// as Opacus' log-sum-exp, but stays accurate when A_α - 1 is below double rounding (tiny q).
double LogAIntegerOrder(double q, double sigma, int64_t alpha) {
  const double log_q = std::log(q);
  const double log_1mq = std::log1p(-q);
  const double two_sigma2 = 2.0 * sigma * sigma;
  // Streaming log-sum-exp: running maximum `max_term` and sum of exp(term - max_term).
  double max_term = kNegInf;
  double scaled_sum = 0.0;
  double log_binom = std::log(static_cast<double>(alpha));  // log C(α, 1)
  for (int64_t k = 2; k <= alpha; ++k) {
    log_binom += std::log(static_cast<double>(alpha - k + 1) / static_cast<double>(k));
    const double kd = static_cast<double>(k);
    const double term = log_binom + kd * log_q + static_cast<double>(alpha - k) * log_1mq +
                        LogExpm1((kd * kd - kd) / two_sigma2);
    if (term <= max_term) {
      scaled_sum += std::exp(term - max_term);
    } else {
      scaled_sum = scaled_sum * std::exp(max_term - term) + 1.0;
      max_term = term;
    }
  }
  if (max_term == kNegInf) return 0.0;  // only when every term underflows: A_α = 1.
  return Log1pExp(max_term + std::log(scaled_sum));
}

// log A_α for fractional α: Opacus' `_compute_log_a_for_frac_alpha` (Mironov, Talwar, Zhang
// 2019, Sec. 3.3, fractional α): two binomial series split at z0 = σ² log(1/q - 1) + 1/2, each
// term weighted by a Gaussian tail ½ erfc(·), summed with signs in log space.
absl::StatusOr<double> LogAFractionalOrder(double q, double sigma, double alpha) {
  const double log_q = std::log(q);
  const double log_1mq = std::log1p(-q);
  const double two_sigma2 = 2.0 * sigma * sigma;
  const double sqrt2_sigma = std::numbers::sqrt2 * sigma;
  const double z0 = sigma * sigma * (log_1mq - log_q) + 0.5;
  const double log_half = -std::numbers::ln2;
  SignedLog a0;
  SignedLog a1;
  double log_abs_binom = 0.0;  // log|C(α, i)|
  int binom_sign = 1;
  for (int64_t i = 0;; ++i) {
    const double id = static_cast<double>(i);
    if (i > 0) {
      const double ratio = (alpha - id + 1.0) / id;  // C(α,i) = C(α,i-1) (α-i+1)/i
      if (ratio < 0) binom_sign = -binom_sign;
      log_abs_binom += std::log(std::fabs(ratio));
    }
    const double j = alpha - id;
    const double log_t0 = log_abs_binom + id * log_q + j * log_1mq;
    const double log_t1 = log_abs_binom + j * log_q + id * log_1mq;
    const double log_e0 = log_half + LogErfc((id - z0) / sqrt2_sigma);
    const double log_e1 = log_half + LogErfc((z0 - j) / sqrt2_sigma);
    const double log_s0 = log_t0 + (id * id - id) / two_sigma2 + log_e0;
    const double log_s1 = log_t1 + (j * j - j) / two_sigma2 + log_e1;
    a0.Add(binom_sign, log_s0);
    a1.Add(binom_sign, log_s1);
    // Opacus' rule, except that we never stop before the binomial coefficients start to shrink
    // (i > α): earlier terms can still grow, and adding them only removes error.
    if (id > alpha && std::max(log_s0, log_s1) < kSeriesLogCutoff) break;
    if (i >= kMaxSeriesTerms) {
      return absl::OutOfRangeError(absl::StrCat(
          "RDP series did not converge in ", kMaxSeriesTerms, " terms for q=", q,
          " sigma=", sigma, " order=", alpha, "; use integer orders or a smaller sigma"));
    }
  }
  SignedLog total = a0;
  total.Add(a1.sign, a1.log_abs);
  if (total.sign <= 0 || std::isnan(total.log_abs)) {
    return absl::InternalError(absl::StrCat("RDP series lost precision for q=", q,
                                            " sigma=", sigma, " order=", alpha));
  }
  return total.log_abs;
}

}  // namespace

absl::Status ValidateSubsampledGaussian(double sampling_rate, double noise_multiplier) {
  if (!(sampling_rate >= 0.0 && sampling_rate <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling rate must be in [0, 1], got ", sampling_rate));
  }
  if (!(noise_multiplier > 0.0 && std::isfinite(noise_multiplier))) {
    return absl::InvalidArgumentError(
        absl::StrCat("noise multiplier must be positive and finite, got ", noise_multiplier));
  }
  return absl::OkStatus();
}

absl::StatusOr<double> SubsampledGaussianRdp(double sampling_rate, double noise_multiplier,
                                             double order) {
  RETURN_IF_ERROR(ValidateSubsampledGaussian(sampling_rate, noise_multiplier));
  if (!(order > 1.0 && order <= kMaxRdpOrder)) {
    return absl::InvalidArgumentError(
        absl::StrCat("RDP order must be in (1, ", kMaxRdpOrder, "], got ", order));
  }
  if (sampling_rate == 0.0) return 0.0;
  // Gaussian mechanism with sensitivity 1 (Mironov 2017, Prop. 7): ε(α) = α / (2σ²).
  if (sampling_rate == 1.0) return order / (2.0 * noise_multiplier * noise_multiplier);
  double log_a;
  if (std::floor(order) == order) {
    log_a = LogAIntegerOrder(sampling_rate, noise_multiplier, static_cast<int64_t>(order));
  } else {
    auto frac = LogAFractionalOrder(sampling_rate, noise_multiplier, order);
    if (!frac.ok()) return frac.status();
    log_a = *frac;
  }
  // A_α >= 1 for α > 1 (Rényi divergences are non-negative); a tiny negative value is rounding.
  return std::max(log_a, 0.0) / (order - 1.0);
}

}  // namespace fedattn::dp
