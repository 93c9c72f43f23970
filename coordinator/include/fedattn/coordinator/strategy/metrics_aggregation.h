// Weighted aggregation of per-site scalar metrics (accuracy, loss, AUC, ...), weighted by each
// site's number of examples. Memory grows with the number of distinct metric names, not sites.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fedattn/coordinator/strategy/types.h"

namespace fedattn::coordinator::strategy {

// Streaming weighted mean per metric name. A metric reported by only some sites is averaged
// over those sites. Thread-compatible.
class MetricsAccumulator {
 public:
  // Adds one site's metrics with weight `num_examples`. InvalidArgument (naming the site and the
  // metric) when num_examples < 0 or a value is NaN/Inf; nothing is added then.
  [[nodiscard]] absl::Status Add(absl::string_view site, int64_t num_examples,
                                 const Metrics& metrics);

  // Weighted mean of every metric seen with positive total weight.
  Metrics Result() const;

  void Clear() { sums_.clear(); }

  // The check Add makes, without adding: OK or InvalidArgument naming the site and the metric.
  static absl::Status Check(absl::string_view site, int64_t num_examples, const Metrics& metrics);

 private:
  std::map<std::string, std::pair<double, double>> sums_;  // name → (Σ w·value, Σ w)
};

// The aggregated evaluation of one round.
struct EvaluationSummary {
  Metrics metrics;            // weighted by num_examples
  int num_results = 0;        // accepted sites
  int64_t num_examples = 0;   // their validation examples
  std::vector<SiteFailure> failures;  // given failures, then rejected results
};

// Aggregates a round's evaluation results and failures. A result with a NaN/Inf metric or
// negative num_examples becomes a failure row. FailedPrecondition (naming how many arrived and
// failed) when fewer than `min_sites` results are accepted; InvalidArgument when the accepted
// results hold zero examples in total.
absl::StatusOr<EvaluationSummary> AggregateEvaluate(std::span<const EvaluateResult> results,
                                                    std::span<const SiteFailure> failures,
                                                    int min_sites = 1);

}  // namespace fedattn::coordinator::strategy
