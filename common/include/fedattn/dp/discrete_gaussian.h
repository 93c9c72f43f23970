// Exact discrete Gaussian noise in integer arithmetic: Canonne, Kamath, Steinke 2020, "The
// Discrete Gaussian for Differential Privacy" (NeurIPS; arXiv:2004.00010), Algorithms 1–3.
// Output x ∈ ℤ with P(x) ∝ exp(-x² / (2σ²)) for a rational σ² — no floating point anywhere, so
// the noise survives secure aggregation's integer encoding and has no floating-point leaks.
//
// Exactness: every coin is a rejection-sampled uniform integer from SecureRng, and fractions are
// compared as (multi-precision) integers. The only deviation is that candidates with |x| >= 2^63
// (not representable) are rejected, which yields the distribution conditioned on |x| < 2^63, an
// event of probability 1 - exp(-2^60) or more for the allowed σ².
//
// Thread safety: samplers are immutable; use one SecureRng per thread.
#pragma once

#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "fedattn/dp/secure_rng.h"

namespace fedattn::dp {

// true with probability exp(-numerator / denominator) (CKS 2020, Alg. 1 with the γ > 1 loop).
// REQUIRES: denominator >= 1.
bool SampleBernoulliExp(uint64_t numerator, uint64_t denominator, SecureRng& rng);

// Discrete Laplace, P(x) ∝ exp(-|x| / scale) on ℤ (CKS 2020, Alg. 2 with s = 1, t = scale).
// REQUIRES: 1 <= scale <= 2^62.
int64_t SampleDiscreteLaplace(uint64_t scale, SecureRng& rng);

class DiscreteGaussianSampler {
 public:
  static constexpr uint64_t kMaxPart = uint64_t{1} << 62;

  // σ² = sigma2_numerator / sigma2_denominator.
  // Errors: InvalidArgument unless 1 <= numerator, denominator <= kMaxPart.
  [[nodiscard]] static absl::StatusOr<DiscreteGaussianSampler> Create(uint64_t sigma2_numerator,
                                                                      uint64_t sigma2_denominator);
  // σ² = sigma², rounded UP to a multiple of 2^-20 (more noise never weakens a DP guarantee).
  // Errors: InvalidArgument unless 2^-20 <= σ² <= 2^42 (σ up to about 2 million).
  [[nodiscard]] static absl::StatusOr<DiscreteGaussianSampler> CreateFromStddev(double sigma);

  // One sample (CKS 2020, Alg. 3: discrete Laplace candidates with scale t = ⌊σ⌋ + 1, each
  // accepted with probability exp(-(|y| - σ²/t)² / (2σ²))). Expected < 2 candidates.
  int64_t Sample(SecureRng& rng) const;

  // Adds one independent sample to each element, modulo 2^64 (two's complement wrap-around):
  // the ring arithmetic of secure aggregation, also correct modulo 2^b for any b <= 64.
  void AddNoise(std::span<uint64_t> values, SecureRng& rng) const;

  uint64_t sigma2_numerator() const { return num_; }
  uint64_t sigma2_denominator() const { return den_; }
  // σ² as a double (for reporting and accounting; sampling never uses it).
  double sigma2() const { return static_cast<double>(num_) / static_cast<double>(den_); }

 private:
  DiscreteGaussianSampler(uint64_t num, uint64_t den);

  uint64_t num_;
  uint64_t den_;
  uint64_t t_;  // ⌊√(num/den)⌋ + 1
};

}  // namespace fedattn::dp
