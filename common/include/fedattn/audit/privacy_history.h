// The composed privacy history of one site: its released mechanisms under the RDP accountant
// (dp/accountant.h), so that the site, the coordinator and an auditor compute the same epsilon
// from the same ledger entries.
//
// Its arithmetic is RdpAccountant::Compose's (total[i] += per_step[i] * steps, in history
// order), so the result is bit for bit the accountant's on the same rows; what it saves is
// recomputing the per-step RDP (156 orders, ~10 ms) for every row: rounds of a job share
// (q, sigma). A release without sample-level DP ("none") makes the history unbounded for good.
//
// Thread safety: a value type, not synchronised.
#pragma once

#include <map>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "fedattn/audit/ledger_entry.h"

namespace fedattn::audit {

class PrivacyHistory {
 public:
  PrivacyHistory();

  // Composes `mechanism` into the history. Errors: INVALID_ARGUMENT from ValidateMechanism.
  [[nodiscard]] absl::Status Add(const LedgerMechanism& mechanism);

  // Epsilon at `delta` of `mechanism` alone; kUnbounded for "none".
  [[nodiscard]] absl::StatusOr<double> Alone(double delta, const LedgerMechanism& mechanism) const;
  // Epsilon at `delta` of the history, with `extra` composed on top when not null. An empty
  // history has spent 0 (not the conversion's floor at the largest order).
  [[nodiscard]] absl::StatusOr<double> Epsilon(double delta, const LedgerMechanism* extra = nullptr) const;

  bool empty() const { return releases_ == 0; }

 private:
  absl::StatusOr<const std::vector<double>*> PerStep(const LedgerMechanism& mechanism) const;

  std::vector<double> orders_;
  std::vector<double> rdp_;
  int64_t releases_ = 0;
  bool unbounded_ = false;  // some release had no sample-level DP
  mutable std::map<std::pair<double, double>, std::vector<double>> per_step_;
};

// OK for delta in (0, 1); INVALID_ARGUMENT naming `what` otherwise.
[[nodiscard]] absl::Status CheckDelta(double delta, absl::string_view what);

}  // namespace fedattn::audit
