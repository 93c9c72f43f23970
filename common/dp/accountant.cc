#include "fedattn/dp/accountant.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/dp/rdp.h"

namespace fedattn::dp {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

absl::Status ValidateOrders(std::span<const double> orders) {
  if (orders.empty()) return absl::InvalidArgumentError("the RDP order grid is empty");
  for (double order : orders) {
    if (!(order > 1.0 && order <= kMaxRdpOrder)) {
      return absl::InvalidArgumentError(
          absl::StrCat("RDP order must be in (1, ", kMaxRdpOrder, "], got ", order));
    }
  }
  std::vector<double> sorted(orders.begin(), orders.end());
  std::sort(sorted.begin(), sorted.end());
  if (auto dup = std::adjacent_find(sorted.begin(), sorted.end()); dup != sorted.end()) {
    return absl::InvalidArgumentError(absl::StrCat("RDP order ", *dup, " appears twice"));
  }
  return absl::OkStatus();
}

absl::Status ValidateRdp(std::span<const double> orders, std::span<const double> rdp) {
  RETURN_IF_ERROR(ValidateOrders(orders));
  if (orders.size() != rdp.size()) {
    return absl::InvalidArgumentError(absl::StrCat(orders.size(), " orders but ", rdp.size(),
                                                   " RDP values"));
  }
  for (double r : rdp) {
    if (!(r >= 0.0)) return absl::InvalidArgumentError(absl::StrCat("RDP value ", r, " < 0"));
  }
  return absl::OkStatus();
}

// Fills the optimum's order, the edge flag and the grid into `out`.
void SetOptimum(std::span<const double> orders, size_t best, PrivacyGuarantee& out) {
  out.optimal_order = orders[best];
  const auto [lo, hi] = std::minmax_element(orders.begin(), orders.end());
  out.optimal_order_at_grid_edge = orders[best] == *lo || orders[best] == *hi;
  out.orders.assign(orders.begin(), orders.end());
}

}  // namespace

std::vector<double> DefaultRdpOrders() {
  std::vector<double> orders;
  orders.reserve(99 + 53 + 4);
  // Written as dp_accounting writes it (1 + x / 10.), so the doubles are bit-identical to theirs.
  for (int x = 1; x < 100; ++x) orders.push_back(1.0 + x / 10.0);
  for (int order = 11; order < 64; ++order) orders.push_back(order);
  for (double order : {128.0, 256.0, 512.0, 1024.0}) orders.push_back(order);
  return orders;
}

absl::Status AccountantOptions::Validate() const { return ValidateOrders(orders); }

absl::Status GaussianSteps::Validate() const {
  RETURN_IF_ERROR(ValidateSubsampledGaussian(sampling_rate, noise_multiplier));
  if (steps < 0) return absl::InvalidArgumentError(absl::StrCat("steps must be >= 0, got ", steps));
  return absl::OkStatus();
}

absl::StatusOr<PrivacyGuarantee> EpsilonFromRdp(std::span<const double> orders,
                                                std::span<const double> rdp, double delta) {
  RETURN_IF_ERROR(ValidateRdp(orders, rdp));
  if (!(delta > 0.0 && delta < 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat("delta must be in (0, 1), got ", delta));
  }
  const double log_delta = std::log(delta);
  double best_eps = kInf;
  size_t best = 0;
  for (size_t i = 0; i < orders.size(); ++i) {
    const double a = orders[i];
    // Balle et al. 2020, Thm. 21; log((a-1)/a) written as log1p(-1/a) to keep digits at a = 1024.
    const double eps = rdp[i] - (log_delta + std::log(a)) / (a - 1.0) + std::log1p(-1.0 / a);
    if (eps < best_eps) {  // strict: ties keep the first order, as numpy's argmin does
      best_eps = eps;
      best = i;
    }
  }
  PrivacyGuarantee out;
  // A negative bound certifies (0, δ)-DP; dp_accounting clamps the same way.
  out.epsilon = std::max(best_eps, 0.0);
  out.delta = delta;
  SetOptimum(orders, best, out);
  return out;
}

absl::StatusOr<PrivacyGuarantee> DeltaFromRdp(std::span<const double> orders,
                                              std::span<const double> rdp, double epsilon) {
  RETURN_IF_ERROR(ValidateRdp(orders, rdp));
  if (!(epsilon >= 0.0 && std::isfinite(epsilon))) {
    return absl::InvalidArgumentError(
        absl::StrCat("epsilon must be finite and >= 0, got ", epsilon));
  }
  double best_log_delta = kInf;
  size_t best = 0;
  for (size_t i = 0; i < orders.size(); ++i) {
    const double a = orders[i];
    // Balle et al. 2020, Thm. 21 solved for δ (dp_accounting's _compute_delta, RDP branch).
    const double log_delta = (a - 1.0) * (rdp[i] - epsilon + std::log1p(-1.0 / a)) - std::log(a);
    if (log_delta < best_log_delta) {
      best_log_delta = log_delta;
      best = i;
    }
  }
  PrivacyGuarantee out;
  out.epsilon = epsilon;
  out.delta = std::min(std::exp(best_log_delta), 1.0);
  SetOptimum(orders, best, out);
  return out;
}

RdpAccountant::RdpAccountant(std::vector<double> orders)
    : orders_(std::move(orders)), rdp_(orders_.size(), 0.0) {}

absl::StatusOr<RdpAccountant> RdpAccountant::Create(AccountantOptions options) {
  RETURN_IF_ERROR(options.Validate());
  return RdpAccountant(std::move(options.orders));
}

absl::Status RdpAccountant::Compose(const GaussianSteps& entry) {
  RETURN_IF_ERROR(entry.Validate());
  std::vector<double> added(orders_.size());
  for (size_t i = 0; i < orders_.size(); ++i) {
    ASSIGN_OR_RETURN(const double per_step,
                     SubsampledGaussianRdp(entry.sampling_rate, entry.noise_multiplier,
                                           orders_[i]));
    // RDP composes additively (Mironov 2017, Prop. 1). Zero steps add nothing, even at an
    // order whose RDP overflowed (inf * 0 would be NaN).
    added[i] = entry.steps == 0 ? 0.0 : per_step * static_cast<double>(entry.steps);
  }
  for (size_t i = 0; i < orders_.size(); ++i) rdp_[i] += added[i];
  history_.push_back(entry);
  return absl::OkStatus();
}

absl::StatusOr<PrivacyGuarantee> RdpAccountant::GetEpsilon(double delta) const {
  return EpsilonFromRdp(orders_, rdp_, delta);
}

absl::StatusOr<PrivacyGuarantee> RdpAccountant::GetDelta(double epsilon) const {
  return DeltaFromRdp(orders_, rdp_, epsilon);
}

absl::StatusOr<PrivacyGuarantee> ComputeEpsilon(double sampling_rate, double noise_multiplier,
                                                int64_t steps, double delta,
                                                const AccountantOptions& options) {
  ASSIGN_OR_RETURN(RdpAccountant accountant, RdpAccountant::Create(options));
  RETURN_IF_ERROR(accountant.Compose({sampling_rate, noise_multiplier, steps}));
  return accountant.GetEpsilon(delta);
}

absl::StatusOr<PrivacyGuarantee> ComputeDelta(double sampling_rate, double noise_multiplier,
                                              int64_t steps, double epsilon,
                                              const AccountantOptions& options) {
  ASSIGN_OR_RETURN(RdpAccountant accountant, RdpAccountant::Create(options));
  RETURN_IF_ERROR(accountant.Compose({sampling_rate, noise_multiplier, steps}));
  return accountant.GetDelta(epsilon);
}

}  // namespace fedattn::dp
