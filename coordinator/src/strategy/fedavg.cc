#include "fedattn/coordinator/strategy/fedavg.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fedattn/coordinator/strategy/aggregation_kernel.h"

namespace fedattn::coordinator::strategy {
namespace {

// Lists failure rows in an error message, capped so thousands of sites stay readable.
std::string DescribeFailures(const std::vector<SiteFailure>& failures) {
  constexpr std::size_t kMaxListed = 10;
  std::vector<std::string> parts;
  for (std::size_t i = 0; i < failures.size() && i < kMaxListed; ++i) {
    parts.push_back(absl::StrCat(failures[i].site, ": ", failures[i].status.ToString()));
  }
  if (failures.size() > kMaxListed) {
    parts.push_back(absl::StrCat("and ", failures.size() - kMaxListed, " more"));
  }
  return parts.empty() ? "" : absl::StrCat(" (", absl::StrJoin(parts, "; "), ")");
}

absl::Status NoOpenRound() {
  return absl::FailedPreconditionError("no open round: call Begin first");
}

}  // namespace

absl::Status WeightedMeanStrategy::Begin(int round, std::size_t num_params) {
  if (num_params == 0) return absl::InvalidArgumentError("num_params must be > 0");
  if (absl::Status state = CheckState(num_params); !state.ok()) return state;
  open_ = true;
  round_ = round;
  num_params_ = num_params;
  sum_.resize(num_params);  // capacity is kept across rounds: no fresh page faults per round
  sum_empty_ = true;
  total_weight_ = 0;
  num_results_ = 0;
  seen_.clear();
  metrics_.Clear();
  failures_.clear();
  return absl::OkStatus();
}

absl::Status WeightedMeanStrategy::Reject(const FitResult& result, absl::Status why) {
  failures_.push_back({result.site, why});
  return why;
}

absl::Status WeightedMeanStrategy::CheckResult(const FitResult& result) {
  return CheckFitResult(result, num_params_, round_, &seen_);
}

absl::Status WeightedMeanStrategy::AccumulateOne(const FitResult& result) {
  const float* update = result.update.data();
  const float weight = static_cast<float>(result.num_examples);
  const std::size_t stop =
      FusedWeightedSum(sum_, std::span(&update, 1), std::span(&weight, 1), 0, sum_empty_);
  if (stop != num_params_) {
    // Blocks before `stop` already hold this update; take it out again (an empty sum needs no
    // undo: its content is ignored until the next contribution overwrites it).
    if (!sum_empty_) SubtractWeighted(sum_, update, weight, stop);
    const std::size_t bad = FirstNonFinite(result.update);
    return Reject(result,
                  absl::InvalidArgumentError(
                      bad < result.update.size()
                          ? absl::StrCat("site ", result.site,
                                         ": update holds NaN or Inf at index ", bad)
                          : absl::StrCat("site ", result.site,
                                         ": update x num_examples overflows float near index ",
                                         stop)));
  }
  sum_empty_ = false;
  total_weight_ += static_cast<double>(result.num_examples);
  ++num_results_;
  (void)metrics_.Add(result.site, result.num_examples, result.metrics);  // checked already
  return absl::OkStatus();
}

absl::Status WeightedMeanStrategy::Accumulate(const FitResult& result) {
  if (!open_) return NoOpenRound();
  if (absl::Status ok = CheckResult(result); !ok.ok()) return Reject(result, std::move(ok));
  return AccumulateOne(result);
}

absl::Status WeightedMeanStrategy::AccumulateBatch(std::span<const FitResult> results) {
  if (!open_) return NoOpenRound();
  std::vector<std::string> rejected;
  std::vector<const FitResult*> valid;
  for (const FitResult& result : results) {
    if (absl::Status ok = CheckResult(result); !ok.ok()) {
      rejected.push_back(std::string(ok.message()));
      (void)Reject(result, std::move(ok));
    } else {
      valid.push_back(&result);
    }
  }
  if (!valid.empty()) {
    std::vector<const float*> updates;
    std::vector<float> weights;
    for (const FitResult* result : valid) {
      updates.push_back(result->update.data());
      weights.push_back(static_cast<float>(result->num_examples));
    }
    // The common case: one fused pass over all updates.
    const std::size_t stop = FusedWeightedSum(sum_, updates, weights, 0, sum_empty_);
    if (stop == num_params_) {
      sum_empty_ = false;
      for (const FitResult* result : valid) {
        total_weight_ += static_cast<double>(result->num_examples);
        ++num_results_;
        (void)metrics_.Add(result->site, result->num_examples, result->metrics);
      }
    } else {
      // Some update is non-finite (or the sum overflows): undo the partial pass and take the
      // results one at a time, so exactly the offending ones become failure rows.
      if (!sum_empty_) {
        for (std::size_t k = 0; k < updates.size(); ++k) {
          SubtractWeighted(sum_, updates[k], weights[k], stop);
        }
      }
      for (const FitResult* result : valid) {
        if (absl::Status ok = AccumulateOne(*result); !ok.ok()) {
          rejected.push_back(std::string(ok.message()));
        }
      }
    }
  }
  if (rejected.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(rejected.size(), " of ", results.size(),
                                                 " result(s) rejected: ",
                                                 absl::StrJoin(rejected, "; ")));
}

absl::Status WeightedMeanStrategy::AccumulateSum(std::span<const float> weighted_sum,
                                                 double total_weight, int num_sites) {
  if (!open_) return NoOpenRound();
  if (weighted_sum.size() != num_params_) {
    return absl::InvalidArgumentError(absl::StrCat("secure-aggregation sum has ",
                                                   weighted_sum.size(), " floats, expected ",
                                                   num_params_));
  }
  if (!std::isfinite(total_weight) || total_weight < 0 || num_sites < 0) {
    return absl::InvalidArgumentError(absl::StrCat("secure-aggregation sum: bad total weight ",
                                                   total_weight, " or site count ", num_sites));
  }
  const float* sum = weighted_sum.data();
  const float one = 1.0f;
  const std::size_t stop =
      FusedWeightedSum(sum_, std::span(&sum, 1), std::span(&one, 1), 0, sum_empty_);
  if (stop != num_params_) {
    if (!sum_empty_) SubtractWeighted(sum_, sum, one, stop);
    return absl::InvalidArgumentError(
        absl::StrCat("secure-aggregation sum holds NaN or Inf (or overflows) near index ", stop));
  }
  sum_empty_ = false;
  total_weight_ += total_weight;
  num_results_ += num_sites;
  return absl::OkStatus();
}

void WeightedMeanStrategy::AddFailure(SiteFailure failure) {
  failures_.push_back(std::move(failure));
}

absl::StatusOr<RoundSummary> WeightedMeanStrategy::Finish(std::span<float> global) {
  if (!open_) return NoOpenRound();
  if (global.size() != num_params_) {
    return absl::InvalidArgumentError(absl::StrCat("global model has ", global.size(),
                                                   " floats, round ", round_, " expects ",
                                                   num_params_));
  }
  if (num_results_ < min_sites_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "round ", round_, ": ", num_results_, " result(s) accepted, ", failures_.size(),
        " failed; min_sites is ", min_sites_, DescribeFailures(failures_)));
  }
  if (!(total_weight_ > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "round ", round_, ": zero total weight (", num_results_,
        " accepted result(s) hold no examples)"));
  }
  ApplyMean(sum_, static_cast<float>(1.0 / total_weight_), global);
  open_ = false;
  RoundSummary summary;
  summary.round = round_;
  summary.num_results = num_results_;
  summary.total_weight = total_weight_;
  summary.metrics = metrics_.Result();
  summary.failures = std::move(failures_);
  failures_.clear();
  return summary;
}

absl::Status FedAvgOptions::Validate() const {
  if (min_sites < 1) {
    return absl::InvalidArgumentError(absl::StrCat("min_sites must be >= 1, got ", min_sites));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<FedAvg>> FedAvg::Create(const FedAvgOptions& options) {
  if (absl::Status ok = options.Validate(); !ok.ok()) return ok;
  return std::make_unique<FedAvg>(options);
}

void FedAvg::ApplyMean(std::span<const float> weighted_sum, float inv_total_weight,
                       std::span<float> global) {
  const float* __restrict sum = weighted_sum.data();
  float* __restrict x = global.data();
  const std::size_t n = global.size();
  for (std::size_t i = 0; i < n; ++i) x[i] += sum[i] * inv_total_weight;
}

absl::Status FedProxOptions::Validate() const {
  if (absl::Status ok = FedAvgOptions{.min_sites = min_sites}.Validate(); !ok.ok()) return ok;
  if (!std::isfinite(proximal_mu) || proximal_mu < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("proximal_mu must be finite and >= 0, got ", proximal_mu));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<FedProx>> FedProx::Create(const FedProxOptions& options) {
  if (absl::Status ok = options.Validate(); !ok.ok()) return ok;
  return std::make_unique<FedProx>(options);
}

ConfigRecord FedProx::ConfigureFit(int round) const {
  ConfigRecord config = FedAvg::ConfigureFit(round);
  config["proximal_mu"] = mu_;
  return config;
}

}  // namespace fedattn::coordinator::strategy
