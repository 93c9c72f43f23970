// Adaptive server optimizers of Reddi et al. 2021, "Adaptive Federated Optimization" (ICLR),
// Algorithm 2: FedAdagrad, FedAdam, FedYogi. The pseudo-gradient Δ_t is the example-weighted
// mean of the site updates (new − old), computed by streaming; the server then steps
//   m_t = β1 m_{t−1} + (1 − β1) Δ_t
//   v_t = v_{t−1} + Δ_t²                                  (Adagrad)
//   v_t = β2 v_{t−1} + (1 − β2) Δ_t²                      (Adam)
//   v_t = v_{t−1} − (1 − β2) Δ_t² sign(v_{t−1} − Δ_t²)    (Yogi)
//   x_{t+1} = x_t + η m_t / (√v_t + τ)
// with m_{−1} = 0 and v_{−1} = τ² (the paper's v_{−1} ≥ τ²), no bias correction (as in the paper).
// State m, v is exposed as NamedBuffers "m" and "v" for persistence.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fedattn/coordinator/strategy/fedavg.h"

namespace fedattn::coordinator::strategy {

struct ServerOptimizerOptions {
  int min_sites = 1;     // accepted results required to finish a round (>= 1); default 1
  double eta = 0.1;      // server learning rate η (> 0); default 0.1 (Flower's default)
  double beta1 = 0.9;    // first-moment decay β1 in [0, 1); default 0.9 (paper)
  double beta2 = 0.99;   // second-moment decay β2 in [0, 1) (unused by Adagrad); default 0.99 (paper)
  double tau = 1e-3;     // adaptivity τ (> 0); default 1e-3 (paper's tuned range 1e-5..1e-1)

  absl::Status Validate() const;
};

enum class ServerOptimizerKind { kAdagrad, kAdam, kYogi };

class ServerOptimizerStrategy : public WeightedMeanStrategy {
 public:
  // InvalidArgument when options do not validate.
  static absl::StatusOr<std::unique_ptr<ServerOptimizerStrategy>> Create(
      ServerOptimizerKind kind, const ServerOptimizerOptions& options);

  absl::string_view Name() const override;
  std::vector<NamedBuffer> SaveState() const override;
  absl::Status RestoreState(std::span<const NamedBuffer> state) override;

 protected:
  ServerOptimizerStrategy(ServerOptimizerKind kind, const ServerOptimizerOptions& options)
      : WeightedMeanStrategy(options.min_sites), kind_(kind), options_(options) {}
  absl::Status CheckState(std::size_t num_params) const override;
  void ApplyMean(std::span<const float> weighted_sum, float inv_total_weight,
                 std::span<float> global) override;

 private:
  ServerOptimizerKind kind_;
  ServerOptimizerOptions options_;
  std::vector<float> m_;  // empty until the first Finish (or a restore)
  std::vector<float> v_;
};

// Convenience constructors; InvalidArgument when options do not validate.
absl::StatusOr<std::unique_ptr<ServerOptimizerStrategy>> MakeFedAdam(
    const ServerOptimizerOptions& options);
absl::StatusOr<std::unique_ptr<ServerOptimizerStrategy>> MakeFedYogi(
    const ServerOptimizerOptions& options);
absl::StatusOr<std::unique_ptr<ServerOptimizerStrategy>> MakeFedAdagrad(
    const ServerOptimizerOptions& options);

}  // namespace fedattn::coordinator::strategy
