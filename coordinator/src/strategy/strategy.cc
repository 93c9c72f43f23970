#include "fedattn/coordinator/strategy/strategy.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/coordinator/strategy/metrics_aggregation.h"

namespace fedattn::coordinator::strategy {

ConfigRecord Strategy::ConfigureFit(int round) const {
  return ConfigRecord{{"round", static_cast<double>(round)}};
}

absl::Status CheckFitResult(const FitResult& result, std::size_t num_params, int round,
                            std::set<std::string>* seen) {
  // One result per site per round, whether or not the first one was accepted.
  if (!seen->insert(result.site).second) {
    return absl::InvalidArgumentError(absl::StrCat("site ", result.site, ": second result in round ", round));
  }
  if (result.update.size() != num_params) {
    return absl::InvalidArgumentError(absl::StrCat("site ", result.site, ": update has ", result.update.size(),
                                                   " floats, expected ", num_params));
  }
  return MetricsAccumulator::Check(result.site, result.num_examples, result.metrics);
}

absl::Status Strategy::AccumulateBatch(std::span<const FitResult> results) {
  std::vector<std::string> rejected;
  for (const FitResult& result : results) {
    absl::Status status = Accumulate(result);
    if (absl::IsFailedPrecondition(status)) return status;
    if (!status.ok()) rejected.push_back(std::string(status.message()));
  }
  if (rejected.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(rejected.size(), " of ", results.size(),
                                                 " result(s) rejected: ",
                                                 absl::StrJoin(rejected, "; ")));
}

absl::Status Strategy::RestoreState(std::span<const NamedBuffer> state) {
  if (state.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(Name(), " keeps no state; cannot restore '", state.front().name, "'"));
}

absl::StatusOr<RoundSummary> AggregateFit(Strategy& strategy, int round, std::span<float> global,
                                          std::span<const FitResult> results,
                                          std::span<const SiteFailure> failures) {
  RETURN_IF_ERROR(strategy.Begin(round, global.size()));
  absl::Status batch = strategy.AccumulateBatch(results);
  // Rejections are already failure rows; only a caller error stops here.
  if (absl::IsFailedPrecondition(batch)) return batch;
  for (const SiteFailure& failure : failures) strategy.AddFailure(failure);
  return strategy.Finish(global);
}

}  // namespace fedattn::coordinator::strategy
