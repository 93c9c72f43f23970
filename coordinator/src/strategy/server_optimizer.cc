#include "fedattn/coordinator/strategy/server_optimizer.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace fedattn::coordinator::strategy {
namespace {

absl::Status CheckUnit(absl::string_view name, double value) {
  if (!(value >= 0 && value < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(name, " must be in [0, 1), got ", value));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ServerOptimizerOptions::Validate() const {
  if (min_sites < 1) {
    return absl::InvalidArgumentError(absl::StrCat("min_sites must be >= 1, got ", min_sites));
  }
  if (!(std::isfinite(eta) && eta > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("eta must be finite and > 0, got ", eta));
  }
  if (absl::Status ok = CheckUnit("beta1", beta1); !ok.ok()) return ok;
  if (absl::Status ok = CheckUnit("beta2", beta2); !ok.ok()) return ok;
  if (!(std::isfinite(tau) && tau > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("tau must be finite and > 0, got ", tau));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ServerOptimizerStrategy>> ServerOptimizerStrategy::Create(
    ServerOptimizerKind kind, const ServerOptimizerOptions& options) {
  if (absl::Status ok = options.Validate(); !ok.ok()) return ok;
  return std::unique_ptr<ServerOptimizerStrategy>(new ServerOptimizerStrategy(kind, options));
}

absl::StatusOr<std::unique_ptr<ServerOptimizerStrategy>> MakeFedAdam(
    const ServerOptimizerOptions& options) {
  return ServerOptimizerStrategy::Create(ServerOptimizerKind::kAdam, options);
}
absl::StatusOr<std::unique_ptr<ServerOptimizerStrategy>> MakeFedYogi(
    const ServerOptimizerOptions& options) {
  return ServerOptimizerStrategy::Create(ServerOptimizerKind::kYogi, options);
}
absl::StatusOr<std::unique_ptr<ServerOptimizerStrategy>> MakeFedAdagrad(
    const ServerOptimizerOptions& options) {
  return ServerOptimizerStrategy::Create(ServerOptimizerKind::kAdagrad, options);
}

absl::string_view ServerOptimizerStrategy::Name() const {
  switch (kind_) {
    case ServerOptimizerKind::kAdagrad:
      return "fedadagrad";
    case ServerOptimizerKind::kAdam:
      return "fedadam";
    case ServerOptimizerKind::kYogi:
      return "fedyogi";
  }
  return "unknown";
}

std::vector<NamedBuffer> ServerOptimizerStrategy::SaveState() const {
  return {{"m", m_}, {"v", v_}};
}

absl::Status ServerOptimizerStrategy::RestoreState(std::span<const NamedBuffer> state) {
  std::vector<float> m;
  std::vector<float> v;
  bool have_m = false;
  bool have_v = false;
  for (const NamedBuffer& buffer : state) {
    if (buffer.name == "m") {
      m = buffer.values;
      have_m = true;
    } else if (buffer.name == "v") {
      v = buffer.values;
      have_v = true;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(Name(), ": unknown state buffer '", buffer.name, "'"));
    }
  }
  if (!have_m || !have_v || m.size() != v.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        Name(), ": state needs buffers 'm' and 'v' of equal length, got m=", m.size(),
        " v=", v.size(), have_m && have_v ? "" : " (one missing)"));
  }
  m_ = std::move(m);
  v_ = std::move(v);
  return absl::OkStatus();
}

absl::Status ServerOptimizerStrategy::CheckState(std::size_t num_params) const {
  if (!m_.empty() && m_.size() != num_params) {
    return absl::InvalidArgumentError(absl::StrCat(Name(), ": optimizer state has ", m_.size(),
                                                   " floats, model has ", num_params));
  }
  return absl::OkStatus();
}

void ServerOptimizerStrategy::ApplyMean(std::span<const float> weighted_sum,
                                        float inv_total_weight, std::span<float> global) {
  const std::size_t n = global.size();
  const float tau = static_cast<float>(options_.tau);
  if (m_.empty()) {
    m_.assign(n, 0.0f);          // m_{-1} = 0 (Reddi et al. 2021, Alg. 2)
    v_.assign(n, tau * tau);     // v_{-1} = τ² (Reddi et al. 2021, Alg. 2: v_{-1} ≥ τ²)
  }
  const float b1 = static_cast<float>(options_.beta1);
  const float b2 = static_cast<float>(options_.beta2);
  const float eta = static_cast<float>(options_.eta);
  const float* sum = weighted_sum.data();
  float* x = global.data();
  float* m = m_.data();
  float* v = v_.data();
  for (std::size_t i = 0; i < n; ++i) {
    const float delta = sum[i] * inv_total_weight;  // Δ_t: weighted mean of client deltas (Alg. 2)
    m[i] = b1 * m[i] + (1.0f - b1) * delta;        // m_t (Reddi et al. 2021, Alg. 2)
    const float d2 = delta * delta;
    switch (kind_) {
      case ServerOptimizerKind::kAdagrad:
        v[i] = v[i] + d2;  // v_t = v_{t-1} + Δ_t² (Reddi et al. 2021, Alg. 2, FedAdagrad)
        break;
      case ServerOptimizerKind::kAdam:
        v[i] = b2 * v[i] + (1.0f - b2) * d2;  // v_t (Reddi et al. 2021, Alg. 2, FedAdam)
        break;
      case ServerOptimizerKind::kYogi: {
        const float diff = v[i] - d2;
        const float sign = static_cast<float>((diff > 0) - (diff < 0));
        v[i] = v[i] - (1.0f - b2) * d2 * sign;  // v_t (Reddi et al. 2021, Alg. 2, FedYogi)
        break;
      }
    }
    x[i] += eta * m[i] / (std::sqrt(v[i]) + tau);  // x_{t+1} (Reddi et al. 2021, Alg. 2)
  }
}

}  // namespace fedattn::coordinator::strategy
