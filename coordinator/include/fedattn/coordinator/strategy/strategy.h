// Strategy: how a federated round is configured and how its results become the next global
// model (Flower's Strategy, on flat float buffers, no LibTorch).
//
// A round is streamed: Begin(round, num_params), then any number of Accumulate / AccumulateBatch
// / AccumulateSum / AddFailure calls in arrival order, then Finish(global). Strategies whose
// NeedsAllUpdates() is false keep O(num_params) memory whatever the number of sites (one float
// accumulator plus their optimizer state) and also accept a secure-aggregation sum
// (AccumulateSum). Strategies whose NeedsAllUpdates() is true (median, trimmed mean) copy every
// update: memory grows with the number of sites, and they cannot run with SecAgg.
//
// Updates are new − old weights. A result the strategy rejects (wrong length, NaN/Inf, negative
// num_examples, a site reporting twice) becomes a failure row of the round, never an exception.
//
// Thread safety: not thread-safe; the round engine serialises calls for one job.
#pragma once

#include <cstddef>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fedattn/coordinator/strategy/types.h"

namespace fedattn::coordinator::strategy {

// The checks every strategy makes on an arriving result: one result per site per round (the site
// is recorded in `seen` either way), an update of `num_params` floats, a valid example count and
// valid metrics. INVALID_ARGUMENT naming the site.
[[nodiscard]] absl::Status CheckFitResult(const FitResult& result, std::size_t num_params, int round,
                                          std::set<std::string>* seen);

class Strategy {
 public:
  virtual ~Strategy() = default;

  // Short name as written in job configs ("fedavg", "fedadam", "median", ...).
  virtual absl::string_view Name() const = 0;

  // True when the rule needs every update at once (robust rules): not usable with SecAgg.
  virtual bool NeedsAllUpdates() const = 0;

  // The config sent to the selected sites together with the global parameters for `round`.
  // Always holds "round"; FedProx adds "proximal_mu". Site selection is the round engine's.
  virtual ConfigRecord ConfigureFit(int round) const;

  // Opens `round` over models of `num_params` floats, discarding any unfinished round.
  // InvalidArgument when num_params is 0 or differs from the restored optimizer state.
  [[nodiscard]] virtual absl::Status Begin(int round, std::size_t num_params) = 0;

  // Takes one site's result as it arrives. OK: accepted. InvalidArgument naming the site: the
  // result was rejected and recorded as a failure row; the round goes on. FailedPrecondition:
  // no open round (a caller bug; nothing recorded).
  [[nodiscard]] virtual absl::Status Accumulate(const FitResult& result) = 0;

  // Takes several results at once (one fused pass where the rule allows). Equivalent to calling
  // Accumulate on each. OK when all were accepted; otherwise InvalidArgument listing the
  // rejected sites (each also a failure row).
  [[nodiscard]] virtual absl::Status AccumulateBatch(std::span<const FitResult> results);

  // Takes the output of secure aggregation: weighted_sum[i] = Σ_k num_examples_k · update_k[i]
  // over `num_sites` sites whose num_examples sum to `total_weight`. FailedPrecondition for
  // strategies that need all updates; InvalidArgument for a wrong length, NaN/Inf, or negative
  // weight (the sum is then not used, and no failure row is added: the caller knows the sites).
  [[nodiscard]] virtual absl::Status AccumulateSum(std::span<const float> weighted_sum,
                                                   double total_weight, int num_sites) = 0;

  // Records a site that produced no result (dropped, deadline, refused).
  virtual void AddFailure(SiteFailure failure) = 0;

  // Closes the round and writes the new global model into `global` (in place).
  // FailedPrecondition: no open round, or fewer than min_sites accepted results (the message
  // says how many arrived and how many failed, with the reasons). InvalidArgument: global has
  // the wrong length, or the accepted results carry zero total weight. On error `global` is
  // unchanged and the round stays open (more results may still be added).
  [[nodiscard]] virtual absl::StatusOr<RoundSummary> Finish(std::span<float> global) = 0;

  // State that must survive a coordinator restart (server optimizer moments), as named buffers;
  // empty for stateless rules. RestoreState replaces the state; InvalidArgument on unknown
  // names or inconsistent lengths. Call between rounds.
  virtual std::vector<NamedBuffer> SaveState() const { return {}; }
  [[nodiscard]] virtual absl::Status RestoreState(std::span<const NamedBuffer> state);
};

// All-at-once convenience: Begin, AccumulateBatch(results), AddFailure for each failure, Finish.
// Rejected results are failure rows of the returned summary, not errors.
absl::StatusOr<RoundSummary> AggregateFit(Strategy& strategy, int round, std::span<float> global,
                                          std::span<const FitResult> results,
                                          std::span<const SiteFailure> failures);

}  // namespace fedattn::coordinator::strategy
