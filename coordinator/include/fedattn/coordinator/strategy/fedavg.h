// FedAvg (McMahan et al. 2017) and FedProx (Li et al. 2020), and the streaming weighted-mean
// base that the server optimizers (server_optimizer.h) share.
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

// Streams Σ num_examples · update into one float accumulator (O(num_params) memory, independent
// of the number of sites) and hands the weighted mean to ApplyMean at Finish. Accepts SecAgg sums.
// NaN/Inf handling: a result whose update holds a NaN/Inf (or whose weighted update overflows
// float) is rejected as a failure row rather than poisoning the model; its partial contribution
// is subtracted again, which can leave float rounding residue (≤ 1 ulp per coordinate) in the
// accumulator when other results were already in it.
class WeightedMeanStrategy : public Strategy {
 public:
  bool NeedsAllUpdates() const override { return false; }
  absl::Status Begin(int round, std::size_t num_params) override;
  absl::Status Accumulate(const FitResult& result) override;
  absl::Status AccumulateBatch(std::span<const FitResult> results) override;
  absl::Status AccumulateSum(std::span<const float> weighted_sum, double total_weight,
                             int num_sites) override;
  void AddFailure(SiteFailure failure) override;
  absl::StatusOr<RoundSummary> Finish(std::span<float> global) override;

 protected:
  explicit WeightedMeanStrategy(int min_sites) : min_sites_(min_sites) {}

  // Checks optimizer state against num_params at Begin (after a RestoreState).
  virtual absl::Status CheckState(std::size_t num_params) const { return absl::OkStatus(); }

  // Moves `global` given the round's mean update, mean[i] = weighted_sum[i] · inv_total_weight.
  // Called once per successful Finish; must not fail.
  virtual void ApplyMean(std::span<const float> weighted_sum, float inv_total_weight,
                         std::span<float> global) = 0;

 private:
  absl::Status CheckResult(const FitResult& result);
  absl::Status Reject(const FitResult& result, absl::Status why);
  absl::Status AccumulateOne(const FitResult& result);

  int min_sites_;
  bool open_ = false;
  int round_ = 0;
  std::size_t num_params_ = 0;
  std::vector<float> sum_;
  bool sum_empty_ = true;  // sum_ holds no contribution yet (its content is garbage)
  double total_weight_ = 0;
  int num_results_ = 0;
  std::set<std::string> seen_;
  MetricsAccumulator metrics_;
  std::vector<SiteFailure> failures_;
};

struct FedAvgOptions {
  int min_sites = 1;  // accepted results required to finish a round (>= 1); default 1

  absl::Status Validate() const;
};

// FedAvg: global += Σ n_k Δ_k / Σ n_k, the example-weighted mean of the updates.
class FedAvg : public WeightedMeanStrategy {
 public:
  // REQUIRES: options.Validate().ok() (use Create to check).
  explicit FedAvg(const FedAvgOptions& options) : WeightedMeanStrategy(options.min_sites) {}
  static absl::StatusOr<std::unique_ptr<FedAvg>> Create(const FedAvgOptions& options);
  absl::string_view Name() const override { return "fedavg"; }

 protected:
  void ApplyMean(std::span<const float> weighted_sum, float inv_total_weight,
                 std::span<float> global) override;
};

struct FedProxOptions {
  int min_sites = 1;          // as FedAvgOptions; default 1
  double proximal_mu = 0.01;  // μ of the sites' proximal term (μ/2)‖w − w_global‖² (>= 0); default 0.01

  absl::Status Validate() const;
};

// FedProx: FedAvg aggregation; sites add the proximal term with μ = config["proximal_mu"].
class FedProx : public FedAvg {
 public:
  // REQUIRES: options.Validate().ok() (use Create to check).
  explicit FedProx(const FedProxOptions& options)
      : FedAvg(FedAvgOptions{.min_sites = options.min_sites}), mu_(options.proximal_mu) {}
  static absl::StatusOr<std::unique_ptr<FedProx>> Create(const FedProxOptions& options);
  absl::string_view Name() const override { return "fedprox"; }
  ConfigRecord ConfigureFit(int round) const override;

 private:
  double mu_;
};

}  // namespace fedattn::coordinator::strategy
