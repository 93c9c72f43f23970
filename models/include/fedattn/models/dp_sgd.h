// Sample-level DP-SGD (Abadi et al. 2016, "Deep Learning with Differential Privacy", Alg. 1):
// Poisson-sampled batches, each example's gradient clipped to L2 norm C, Gaussian noise
// N(0, σ²C²) added once to the sum, divided by the expected batch size qN.
//
// Per-example norms come from one forward and one backward pass (dp_ops.h), not from a loop over
// examples; NaiveLoop is that loop, kept as the reference for tests and benchmarks. Noise and
// sampling draw from dp::SecureRng (ChaCha20 keyed by RAND_bytes); a fixed seed is for tests.
//
// Privacy: the accountant (fedattn/dp/accountant.h) assumes exactly this — Poisson sampling at
// rate q, noise multiplier σ, one step per noisy update. Trainer::Fit in DP mode reports those
// in TrainResult::dp_sgd; steps run through Trainer::TrainStep on batches the caller chose are
// not Poisson-sampled and must not be accounted as such.
//
// Not thread-safe: one step object per trainer.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include <torch/types.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fedattn/dp/secure_rng.h"
#include "fedattn/models/trainer.h"

namespace fedattn::models {

struct DpSgdStepOptions {
  absl::Status Validate() const;

  FEDATTN_ARG(double, noise_multiplier) = 1.0;  // σ >= 0: noise stddev / max_grad_norm (0: no noise, no privacy)
  FEDATTN_ARG(double, max_grad_norm) = 1.0;     // C > 0: per-example L2 clipping norm
  FEDATTN_ARG(double, expected_batch_size) = 0.0;  // qN, the divisor; > 0 before the first Compute
  FEDATTN_ARG(std::optional<uint64_t>, seed) = std::nullopt;  // tests only; unset = RAND_bytes
  FEDATTN_ARG(bool, naive_loop) = false;  // reference: one forward + backward per example
};

// The DP-SGD gradient of one batch, for Trainer (set by Trainer::EnableDpSgd).
class DpSgdStep : public GradientStep {
 public:
  // Errors: InvalidArgument for invalid options; Internal if the CSPRNG cannot be seeded.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<DpSgdStep>> Create(const DpSgdStepOptions& options);

  void set_expected_batch_size(double expected) { options_.expected_batch_size(expected); }
  const DpSgdStepOptions& options() const { return options_; }

  // flat->grads() (zero on entry) = (Σ_b clip_C(∇ℓ_b) + N(0, σ²C² I)) / expected_batch_size,
  // where clip_C(g) = g · min(1, C / (‖g‖ + 1e-6)). Returns the batch's mean loss (0 when the
  // batch is empty: an empty batch still gets noise). Errors: FailedPrecondition naming the
  // parameter when a trainable parameter is used by an operation without per-example support
  // (see dp_ops.h), or when expected_batch_size is not set.
  absl::StatusOr<double> Compute(ModelImpl& model, const Batch& batch, FlatParameters* flat) override;
  // Only Σ_b clip_C(∇ℓ_b), into flat->grads() (zero on entry); no noise, no division.
  [[nodiscard]] absl::StatusOr<double> ClippedSum(ModelImpl& model, const Batch& batch, FlatParameters* flat);
  // Adds the step's noise N(0, σ²C² I) to flat->grads(), without dividing: data-parallel training
  // adds it on one rank to the all-reduced sum of every rank's ClippedSum (docs/privacy.md).
  [[nodiscard]] absl::Status AddNoise(FlatParameters* flat);
  // Runs ClippedSum on `sample` and discards the result: OK iff DP-SGD can train this model.
  [[nodiscard]] absl::Status CheckSupported(ModelImpl& model, const Batch& sample, FlatParameters* flat);

  int64_t examples() const { return examples_; }  // examples seen by Compute
  int64_t clipped() const { return clipped_; }    // of which with a gradient norm above C
  void ResetCounters() { examples_ = clipped_ = 0; }
  void SetCounters(int64_t examples, int64_t clipped) { examples_ = examples, clipped_ = clipped; }

 private:
  DpSgdStep(DpSgdStepOptions options, dp::SecureRng rng) : options_(std::move(options)), rng_(std::move(rng)) {}
  absl::StatusOr<double> TapeClippedSum(ModelImpl& model, const Batch& batch, FlatParameters* flat);
  absl::StatusOr<double> LoopClippedSum(ModelImpl& model, const Batch& batch, FlatParameters* flat);

  DpSgdStepOptions options_;
  dp::SecureRng rng_;
  int64_t examples_ = 0, clipped_ = 0;
};

// Adds N(0, stddev²) to every element of `values` (contiguous float32, any device): Box–Muller on
// 53-bit uniforms as dp::AddGaussianNoise, vectorised, from independent ChaCha20 streams keyed by
// `rng` (one per 2^18 elements, filled in parallel; the result for a seed does not depend on the
// thread count). Errors: InvalidArgument for a negative or non-finite stddev or a bad tensor.
[[nodiscard]] absl::Status AddSecureGaussianNoise(const torch::Tensor& values, double stddev, dp::SecureRng& rng);

// Poisson sampling: at every Next(), each of `population` indices independently with
// probability `rate` (geometric gaps, so O(qN) per draw), so batch sizes are Binomial(N, q) and
// may be 0.
class PoissonSampler {
 public:
  // REQUIRES: population >= 1, rate in (0, 1]. Randomness from RAND_bytes, or a fixed seed (tests).
  [[nodiscard]] static absl::StatusOr<PoissonSampler> Create(int64_t population, double rate,
                                                             std::optional<uint64_t> seed = std::nullopt);
  std::vector<int64_t> Next();  // ascending indices

 private:
  PoissonSampler(int64_t population, double rate, dp::SecureRng rng)
      : population_(population), rate_(rate), rng_(std::move(rng)) {}
  int64_t population_;
  double rate_;
  dp::SecureRng rng_;
};

}  // namespace fedattn::models
