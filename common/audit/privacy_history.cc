#include "fedattn/audit/privacy_history.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/dp/accountant.h"
#include "fedattn/dp/rdp.h"

namespace fedattn::audit {

absl::Status CheckDelta(double delta, absl::string_view what) {
  if (!(delta > 0 && delta < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " must be in (0, 1), got ", delta));
  }
  return absl::OkStatus();
}

PrivacyHistory::PrivacyHistory() : orders_(dp::DefaultRdpOrders()), rdp_(orders_.size(), 0.0) {}

absl::Status PrivacyHistory::Add(const LedgerMechanism& m) {
  RETURN_IF_ERROR(ValidateMechanism(m));
  ++releases_;
  if (m.unbounded()) {
    unbounded_ = true;
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(const std::vector<double>* per_step, PerStep(m));
  for (size_t i = 0; i < rdp_.size(); ++i) rdp_[i] += (*per_step)[i] * static_cast<double>(m.steps);
  return absl::OkStatus();
}

absl::StatusOr<double> PrivacyHistory::Alone(double delta, const LedgerMechanism& m) const {
  RETURN_IF_ERROR(CheckDelta(delta, "delta"));
  RETURN_IF_ERROR(ValidateMechanism(m));
  if (m.unbounded()) return kUnbounded;
  ASSIGN_OR_RETURN(const std::vector<double>* per_step, PerStep(m));
  std::vector<double> total(orders_.size(), 0.0);
  for (size_t i = 0; i < total.size(); ++i) total[i] += (*per_step)[i] * static_cast<double>(m.steps);
  ASSIGN_OR_RETURN(dp::PrivacyGuarantee guarantee, dp::EpsilonFromRdp(orders_, total, delta));
  return guarantee.epsilon;
}

absl::StatusOr<double> PrivacyHistory::Epsilon(double delta, const LedgerMechanism* extra) const {
  RETURN_IF_ERROR(CheckDelta(delta, "delta"));
  if (extra != nullptr) RETURN_IF_ERROR(ValidateMechanism(*extra));
  if (unbounded_ || (extra != nullptr && extra->unbounded())) return kUnbounded;
  const bool nothing = std::all_of(rdp_.begin(), rdp_.end(), [](double value) { return value == 0; });
  if (nothing && extra == nullptr) return 0.0;
  std::vector<double> total = rdp_;
  if (extra != nullptr) {
    ASSIGN_OR_RETURN(const std::vector<double>* per_step, PerStep(*extra));
    for (size_t i = 0; i < total.size(); ++i) total[i] += (*per_step)[i] * static_cast<double>(extra->steps);
  }
  ASSIGN_OR_RETURN(dp::PrivacyGuarantee guarantee, dp::EpsilonFromRdp(orders_, total, delta));
  return guarantee.epsilon;
}

absl::StatusOr<const std::vector<double>*> PrivacyHistory::PerStep(const LedgerMechanism& m) const {
  const std::pair<double, double> key(m.sampling_rate, m.noise_multiplier);
  auto it = per_step_.find(key);
  if (it == per_step_.end()) {
    std::vector<double> values(orders_.size());
    for (size_t i = 0; i < orders_.size(); ++i) {
      // Mironov, Talwar, Zhang 2019, "Rényi DP of the Sampled Gaussian Mechanism", §3 (dp/rdp.h).
      ASSIGN_OR_RETURN(values[i], dp::SubsampledGaussianRdp(m.sampling_rate, m.noise_multiplier, orders_[i]));
    }
    it = per_step_.emplace(key, std::move(values)).first;
  }
  return &it->second;
}

}  // namespace fedattn::audit
