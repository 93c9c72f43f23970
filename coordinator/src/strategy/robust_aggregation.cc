#include "fedattn/coordinator/strategy/robust_aggregation.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "fedattn/coordinator/strategy/aggregation_kernel.h"

namespace fedattn::coordinator::strategy {
namespace {

absl::Status CheckMinSites(int min_sites) {
  if (min_sites < 1) {
    return absl::InvalidArgumentError(absl::StrCat("min_sites must be >= 1, got ", min_sites));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RobustStrategy::Begin(int round, std::size_t num_params) {
  if (num_params == 0) return absl::InvalidArgumentError("num_params must be > 0");
  open_ = true;
  round_ = round;
  num_params_ = num_params;
  updates_.clear();
  total_weight_ = 0;
  seen_.clear();
  metrics_.Clear();
  failures_.clear();
  return absl::OkStatus();
}

absl::Status RobustStrategy::Reject(const FitResult& result, absl::Status why) {
  failures_.push_back({result.site, why});
  return why;
}

absl::Status RobustStrategy::Accumulate(const FitResult& result) {
  if (!open_) return absl::FailedPreconditionError("no open round: call Begin first");
  if (absl::Status ok = CheckFitResult(result, num_params_, round_, &seen_); !ok.ok()) {
    return Reject(result, std::move(ok));
  }
  // A NaN would make sorting meaningless (and a median of NaNs is still NaN): reject the site.
  if (const std::size_t bad = FirstNonFinite(result.update); bad < result.update.size()) {
    return Reject(result, absl::InvalidArgumentError(absl::StrCat(
                              "site ", result.site, ": update holds NaN or Inf at index ", bad)));
  }
  updates_.emplace_back(result.update.begin(), result.update.end());
  total_weight_ += static_cast<double>(result.num_examples);
  (void)metrics_.Add(result.site, result.num_examples, result.metrics);
  return absl::OkStatus();
}

absl::Status RobustStrategy::AccumulateSum(std::span<const float>, double, int) {
  return absl::FailedPreconditionError(absl::StrCat(
      Name(), " needs every site's update and cannot aggregate a secure-aggregation sum"));
}

void RobustStrategy::AddFailure(SiteFailure failure) { failures_.push_back(std::move(failure)); }

absl::StatusOr<RoundSummary> RobustStrategy::Finish(std::span<float> global) {
  if (!open_) return absl::FailedPreconditionError("no open round: call Begin first");
  if (global.size() != num_params_) {
    return absl::InvalidArgumentError(absl::StrCat("global model has ", global.size(),
                                                   " floats, round ", round_, " expects ",
                                                   num_params_));
  }
  const int accepted = static_cast<int>(updates_.size());
  if (accepted < min_sites_) {
    std::string reasons;
    for (const SiteFailure& failure : failures_) {
      absl::StrAppend(&reasons, reasons.empty() ? " (" : "; ", failure.site, ": ",
                      failure.status.ToString());
    }
    if (!reasons.empty()) reasons += ")";
    return absl::FailedPreconditionError(absl::StrCat("round ", round_, ": ", accepted,
                                                      " result(s) accepted, ", failures_.size(),
                                                      " failed; min_sites is ", min_sites_,
                                                      reasons));
  }
  std::vector<float> column(updates_.size());
  for (std::size_t i = 0; i < num_params_; ++i) {
    for (std::size_t k = 0; k < updates_.size(); ++k) column[k] = updates_[k][i];
    global[i] += Combine(column);
  }
  open_ = false;
  RoundSummary summary;
  summary.round = round_;
  summary.num_results = accepted;
  summary.total_weight = total_weight_;
  summary.metrics = metrics_.Result();
  summary.failures = std::move(failures_);
  failures_.clear();
  updates_.clear();
  return summary;
}

absl::Status MedianOptions::Validate() const { return CheckMinSites(min_sites); }

absl::StatusOr<std::unique_ptr<CoordinateMedian>> CoordinateMedian::Create(
    const MedianOptions& options) {
  if (absl::Status ok = options.Validate(); !ok.ok()) return ok;
  return std::unique_ptr<CoordinateMedian>(new CoordinateMedian(options));
}

float CoordinateMedian::Combine(std::span<float> column) const {
  // Coordinate-wise median (Yin et al. 2018, §3, Option I); even n: mean of the two middle values.
  const std::size_t n = column.size();
  const auto mid = column.begin() + static_cast<std::ptrdiff_t>(n / 2);
  std::nth_element(column.begin(), mid, column.end());
  if (n % 2 == 1) return *mid;
  const float lower = *std::max_element(column.begin(), mid);
  return static_cast<float>((static_cast<double>(lower) + *mid) / 2);
}

absl::Status TrimmedMeanOptions::Validate() const {
  if (absl::Status ok = CheckMinSites(min_sites); !ok.ok()) return ok;
  if (!(beta >= 0 && beta < 0.5)) {
    return absl::InvalidArgumentError(absl::StrCat("beta must be in [0, 0.5), got ", beta));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TrimmedMean>> TrimmedMean::Create(
    const TrimmedMeanOptions& options) {
  if (absl::Status ok = options.Validate(); !ok.ok()) return ok;
  return std::unique_ptr<TrimmedMean>(new TrimmedMean(options));
}

float TrimmedMean::Combine(std::span<float> column) const {
  // Coordinate-wise β-trimmed mean (Yin et al. 2018, §3, Option II): drop floor(βn) per end.
  const std::size_t n = column.size();
  const std::size_t trim = static_cast<std::size_t>(std::floor(beta_ * static_cast<double>(n)));
  std::sort(column.begin(), column.end());
  double sum = 0;
  for (std::size_t k = trim; k < n - trim; ++k) sum += column[k];
  return static_cast<float>(sum / static_cast<double>(n - trim * 2));
}

}  // namespace fedattn::coordinator::strategy
