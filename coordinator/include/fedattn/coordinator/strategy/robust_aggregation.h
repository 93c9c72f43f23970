// Byzantine-robust coordinate-wise rules of Yin et al. 2018, "Byzantine-Robust Distributed
// Learning: Towards Optimal Statistical Rates" (ICML), §3: coordinate-wise median and
// coordinate-wise β-trimmed mean of the site updates (unweighted: num_examples only weights the
// metrics), then global += that robust update.
//
// These need every update at once: Accumulate copies each accepted update, so memory is
// O(num_sites · num_params). They cannot run with secure aggregation (the coordinator only sees
// the sum); AccumulateSum returns FailedPrecondition. Use them only for jobs without SecAgg.
#pragma once

#include <cstddef>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fedattn/coordinator/strategy/metrics_aggregation.h"
#include "fedattn/coordinator/strategy/strategy.h"

namespace fedattn::coordinator::strategy {

// Shared bookkeeping of the robust rules: validation, copies of updates, failures, min_sites.
class RobustStrategy : public Strategy {
 public:
  bool NeedsAllUpdates() const override { return true; }
  absl::Status Begin(int round, std::size_t num_params) override;
  absl::Status Accumulate(const FitResult& result) override;
  absl::Status AccumulateSum(std::span<const float> weighted_sum, double total_weight,
                             int num_sites) override;
  void AddFailure(SiteFailure failure) override;
  absl::StatusOr<RoundSummary> Finish(std::span<float> global) override;

 protected:
  explicit RobustStrategy(int min_sites) : min_sites_(min_sites) {}

  // The robust aggregate of `column` (one coordinate of every update; may be reordered).
  virtual float Combine(std::span<float> column) const = 0;

 private:
  absl::Status Reject(const FitResult& result, absl::Status why);

  int min_sites_;
  bool open_ = false;
  int round_ = 0;
  std::size_t num_params_ = 0;
  std::vector<std::vector<float>> updates_;
  double total_weight_ = 0;
  std::set<std::string> seen_;
  MetricsAccumulator metrics_;
  std::vector<SiteFailure> failures_;
};

struct MedianOptions {
  int min_sites = 1;  // accepted results required to finish a round (>= 1); default 1

  absl::Status Validate() const;
};

// Coordinate-wise median; with an even count, the mean of the two middle values.
class CoordinateMedian : public RobustStrategy {
 public:
  static absl::StatusOr<std::unique_ptr<CoordinateMedian>> Create(const MedianOptions& options);
  absl::string_view Name() const override { return "median"; }

 protected:
  explicit CoordinateMedian(const MedianOptions& options) : RobustStrategy(options.min_sites) {}
  float Combine(std::span<float> column) const override;
};

struct TrimmedMeanOptions {
  int min_sites = 1;  // accepted results required to finish a round (>= 1); default 1
  double beta = 0.1;  // fraction trimmed at EACH end, in [0, 0.5); floor(beta · n) values per end; default 0.1

  absl::Status Validate() const;
};

// Coordinate-wise trimmed mean: drop the floor(beta·n) smallest and largest values, average the rest.
class TrimmedMean : public RobustStrategy {
 public:
  static absl::StatusOr<std::unique_ptr<TrimmedMean>> Create(const TrimmedMeanOptions& options);
  absl::string_view Name() const override { return "trimmed_mean"; }

 protected:
  explicit TrimmedMean(const TrimmedMeanOptions& options)
      : RobustStrategy(options.min_sites), beta_(options.beta) {}
  float Combine(std::span<float> column) const override;

 private:
  double beta_;
};

}  // namespace fedattn::coordinator::strategy
