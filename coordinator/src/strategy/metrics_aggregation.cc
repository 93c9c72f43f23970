#include "fedattn/coordinator/strategy/metrics_aggregation.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace fedattn::coordinator::strategy {

absl::Status MetricsAccumulator::Check(absl::string_view site, int64_t num_examples,
                                       const Metrics& metrics) {
  if (num_examples < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("site ", site, ": negative num_examples ", num_examples));
  }
  for (const auto& [name, value] : metrics) {
    if (!std::isfinite(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("site ", site, ": metric '", name, "' is not finite (", value, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status MetricsAccumulator::Add(absl::string_view site, int64_t num_examples,
                                     const Metrics& metrics) {
  if (absl::Status ok = Check(site, num_examples, metrics); !ok.ok()) return ok;
  const double w = static_cast<double>(num_examples);
  for (const auto& [name, value] : metrics) {
    auto& [weighted, weight] = sums_[name];
    weighted += w * value;
    weight += w;
  }
  return absl::OkStatus();
}

Metrics MetricsAccumulator::Result() const {
  Metrics out;
  for (const auto& [name, sums] : sums_) {
    if (sums.second > 0) out[name] = sums.first / sums.second;
  }
  return out;
}

absl::StatusOr<EvaluationSummary> AggregateEvaluate(std::span<const EvaluateResult> results,
                                                    std::span<const SiteFailure> failures,
                                                    int min_sites) {
  EvaluationSummary summary;
  summary.failures.assign(failures.begin(), failures.end());
  MetricsAccumulator metrics;
  for (const EvaluateResult& result : results) {
    absl::Status added = metrics.Add(result.site, result.num_examples, result.metrics);
    if (!added.ok()) {
      summary.failures.push_back({result.site, std::move(added)});
      continue;
    }
    ++summary.num_results;
    summary.num_examples += result.num_examples;
  }
  if (summary.num_results < min_sites) {
    return absl::FailedPreconditionError(absl::StrCat(
        "evaluation: ", summary.num_results, " result(s) accepted, ", summary.failures.size(),
        " failed; min_sites is ", min_sites));
  }
  if (summary.num_examples == 0) {
    return absl::InvalidArgumentError("evaluation: zero total weight (no validation examples)");
  }
  summary.metrics = metrics.Result();
  return summary;
}

}  // namespace fedattn::coordinator::strategy
