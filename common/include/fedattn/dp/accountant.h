// The RDP accountant: composes subsampled-Gaussian steps over a history and converts the total
// to an (ε, δ) guarantee, the way Opacus' RDPAccountant and Google's dp_accounting do.
//
// The guarantee depends on the order grid it is minimised over (another grid gives another,
// equally valid ε), so the grid is an explicit option and is returned with every result.
// Conversion RDP -> (ε, δ): Balle et al. 2020, "Hypothesis Testing Interpretations and Rényi
// Differential Privacy", Thm. 21 (as Opacus' get_privacy_spent writes it):
//   ε = min_α [ rdp(α) - (log δ + log α)/(α - 1) + log((α - 1)/α) ],  clamped at 0.
//
// Thread safety: RdpAccountant is a value type, not synchronised; const methods may run
// concurrently.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fedattn::dp {

// dp_accounting's DEFAULT_RDP_ORDERS: 1.1, 1.2, ..., 10.9 (computed as 1 + x/10.0, x = 1..99),
// the integers 11..63, then 128, 256, 512, 1024.
std::vector<double> DefaultRdpOrders();

struct AccountantOptions {
  // Orders α at which RDP is tracked. Each must be finite, in (1, kMaxRdpOrder], and appear
  // once; order does not matter. Default: DefaultRdpOrders().
  std::vector<double> orders = DefaultRdpOrders();

  [[nodiscard]] absl::Status Validate() const;
};

// `steps` steps of the Poisson-subsampled Gaussian mechanism (see rdp.h) with sampling rate q
// and noise multiplier σ: one row of a privacy history. Rounds may differ in q, σ and steps.
struct GaussianSteps {
  double sampling_rate = 0.0;     // q, in [0, 1]
  double noise_multiplier = 0.0;  // σ > 0 (noise stddev / clipping norm)
  int64_t steps = 0;              // >= 0

  [[nodiscard]] absl::Status Validate() const;
};

// An (ε, δ) guarantee and the order grid it was minimised over.
struct PrivacyGuarantee {
  double epsilon = 0.0;        // may be +inf when every order's RDP is infinite
  double delta = 0.0;
  double optimal_order = 0.0;  // the grid order attaining the minimum
  // True when the optimum is the grid's smallest or largest order: a wider grid might give a
  // tighter guarantee (Opacus warns in this case).
  bool optimal_order_at_grid_edge = false;
  std::vector<double> orders;  // the grid, as given
};

// (ε, δ) from total RDP values `rdp[i]` at `orders[i]` for a given δ in (0, 1).
// Errors: InvalidArgument for mismatched or empty spans, invalid orders, negative or NaN RDP, or
// δ outside (0, 1).
[[nodiscard]] absl::StatusOr<PrivacyGuarantee> EpsilonFromRdp(std::span<const double> orders,
                                                              std::span<const double> rdp,
                                                              double delta);

// The smallest δ for a given ε >= 0, by inverting the same conversion at each order:
//   log δ(α) = (α - 1)(rdp(α) - ε + log((α - 1)/α)) - log α,  δ = min(1, min_α δ(α)).
// So EpsilonFromRdp(orders, rdp, DeltaFromRdp(orders, rdp, ε).delta).epsilon == ε up to rounding.
[[nodiscard]] absl::StatusOr<PrivacyGuarantee> DeltaFromRdp(std::span<const double> orders,
                                                            std::span<const double> rdp,
                                                            double epsilon);

class RdpAccountant {
 public:
  // Errors: InvalidArgument from options.Validate().
  [[nodiscard]] static absl::StatusOr<RdpAccountant> Create(AccountantOptions options = {});

  // Composes `entry` into the history. On error (invalid entry, or RDP not computable) nothing
  // is recorded.
  [[nodiscard]] absl::Status Compose(const GaussianSteps& entry);

  [[nodiscard]] absl::StatusOr<PrivacyGuarantee> GetEpsilon(double delta) const;
  [[nodiscard]] absl::StatusOr<PrivacyGuarantee> GetDelta(double epsilon) const;

  const std::vector<GaussianSteps>& history() const { return history_; }
  const std::vector<double>& orders() const { return orders_; }
  // Total RDP at each order of orders(), summed over the history.
  const std::vector<double>& rdp() const { return rdp_; }

 private:
  explicit RdpAccountant(std::vector<double> orders);

  std::vector<double> orders_;
  std::vector<double> rdp_;
  std::vector<GaussianSteps> history_;
};

// Convenience: ε for `steps` identical steps, over `options.orders`.
[[nodiscard]] absl::StatusOr<PrivacyGuarantee> ComputeEpsilon(
    double sampling_rate, double noise_multiplier, int64_t steps, double delta,
    const AccountantOptions& options = {});
// Convenience: δ for `steps` identical steps at a given ε.
[[nodiscard]] absl::StatusOr<PrivacyGuarantee> ComputeDelta(
    double sampling_rate, double noise_multiplier, int64_t steps, double epsilon,
    const AccountantOptions& options = {});

}  // namespace fedattn::dp
