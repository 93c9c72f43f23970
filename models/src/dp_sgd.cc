#include "fedattn/models/dp_sgd.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <numbers>

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/models/dp_ops.h"
#include "status_util.h"

namespace fedattn::models {
namespace {

// Elements of the noise vector per independent ChaCha20 stream (see AddSecureGaussianNoise).
constexpr int64_t kNoiseSpan = 1 << 18;

absl::StatusOr<dp::SecureRng> MakeRng(const std::optional<uint64_t>& seed) {
  return seed ? dp::SecureRng::CreateForTesting(*seed) : dp::SecureRng::Create();
}

// Per-example clipping factor min(1, C / (‖g‖ + 1e-6)) (Abadi et al. 2016, Alg. 1; the 1e-6 as
// Opacus writes it).
torch::Tensor ClipFactors(const torch::Tensor& norms, double max_grad_norm) {
  return (max_grad_norm / (norms + 1e-6)).clamp_max(1.0);
}

// DP-SGD runs in float32: autocast would give the saved activations and the output gradients of
// an op different dtypes.
class AutocastOff {
 public:
  AutocastOff() : cpu_(at::autocast::is_cpu_enabled()), gpu_(at::autocast::is_enabled()) {
    at::autocast::set_cpu_enabled(false);
    at::autocast::set_enabled(false);
  }
  ~AutocastOff() {
    at::autocast::set_cpu_enabled(cpu_);
    at::autocast::set_enabled(gpu_);
  }

 private:
  bool cpu_, gpu_;
};

}  // namespace

absl::Status DpSgdStepOptions::Validate() const {
  if (!(noise_multiplier_ >= 0 && std::isfinite(noise_multiplier_))) {
    return absl::InvalidArgumentError(absl::StrCat("noise_multiplier must be finite and >= 0, got ", noise_multiplier_));
  }
  if (!(max_grad_norm_ > 0 && std::isfinite(max_grad_norm_))) {
    return absl::InvalidArgumentError(absl::StrCat("max_grad_norm must be finite and > 0, got ", max_grad_norm_));
  }
  if (!(expected_batch_size_ >= 0 && std::isfinite(expected_batch_size_))) {
    return absl::InvalidArgumentError("expected_batch_size must be finite and >= 0");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<DpSgdStep>> DpSgdStep::Create(const DpSgdStepOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  ASSIGN_OR_RETURN(dp::SecureRng rng, MakeRng(options.seed()));
  return std::unique_ptr<DpSgdStep>(new DpSgdStep(options, std::move(rng)));
}

absl::StatusOr<double> DpSgdStep::Compute(ModelImpl& model, const Batch& batch, FlatParameters* flat) {
  if (!(options_.expected_batch_size() > 0)) {
    return absl::FailedPreconditionError("DP-SGD: expected_batch_size is not set");
  }
  ASSIGN_OR_RETURN(double loss, ClippedSum(model, batch, flat));
  RETURN_IF_ERROR(AddNoise(flat));
  try {
    torch::NoGradGuard no_grad;
    flat->grads().div_(options_.expected_batch_size());
  } catch (const c10::Error& e) {
    return FromTorch(e, "DP-SGD noise");
  }
  return loss;
}

absl::Status DpSgdStep::AddNoise(FlatParameters* flat) {
  try {
    torch::NoGradGuard no_grad;
    const double stddev = options_.noise_multiplier() * options_.max_grad_norm();
    if (stddev > 0) RETURN_IF_ERROR(AddSecureGaussianNoise(flat->grads(), stddev, rng_));
  } catch (const c10::Error& e) {
    return FromTorch(e, "DP-SGD noise");
  }
  return absl::OkStatus();
}

absl::StatusOr<double> DpSgdStep::ClippedSum(ModelImpl& model, const Batch& batch, FlatParameters* flat) {
  if (batch.size() == 0) return 0.0;
  try {
    AutocastOff autocast_off;
    return options_.naive_loop() ? LoopClippedSum(model, batch, flat) : TapeClippedSum(model, batch, flat);
  } catch (const c10::Error& e) {
    flat->BindGrads();
    return FromTorch(e, "DP-SGD step");
  }
}

absl::Status DpSgdStep::CheckSupported(ModelImpl& model, const Batch& sample, FlatParameters* flat) {
  const int64_t examples = examples_, clipped = clipped_;
  absl::StatusOr<double> loss = ClippedSum(model, sample, flat);
  examples_ = examples;
  clipped_ = clipped;
  flat->ZeroGrad();
  return loss.status();
}

absl::StatusOr<double> DpSgdStep::TapeClippedSum(ModelImpl& model, const Batch& batch, FlatParameters* flat) {
  const int64_t n = batch.size();
  PerExampleTape tape(n, flat);
  // With the parameters' .grad() unbound, a gradient that shows up there after backward came
  // from an op that bypassed the tape: its per-example norm is unknown, so refuse.
  flat->UnbindGrads();
  struct Rebind {
    FlatParameters* flat;
    ~Rebind() { flat->BindGrads(); }
  } rebind{flat};
  torch::Tensor losses;
  {
    PerExampleTape::Scope scope(&tape);
    losses = ComputeLoss(model.forward(batch), batch.labels, model.regression(), /*per_example=*/true);
  }
  if (!tape.ok()) return absl::FailedPreconditionError(absl::StrCat("DP-SGD: ", tape.status().message()));
  losses.sum().backward();
  const std::vector<torch::Tensor>& params = flat->parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    if (params[i].grad().defined()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "DP-SGD cannot clip per-example gradients of trainable parameter '", flat->layout()[i].name,
          "': the model uses it in an operation without per-example support (see fedattn/models/dp_ops.h); "
          "freeze it or route it through those ops"));
    }
  }
  if (!tape.ok()) return absl::FailedPreconditionError(absl::StrCat("DP-SGD: ", tape.status().message()));
  torch::NoGradGuard no_grad;
  const torch::Tensor norms = tape.NormSq().sqrt();
  tape.WriteScaledSum(ClipFactors(norms, options_.max_grad_norm()).to(torch::kFloat32));
  examples_ += n;
  clipped_ += norms.gt(options_.max_grad_norm()).sum().item<int64_t>();
  return losses.detach().mean().item<double>();
}

absl::StatusOr<double> DpSgdStep::LoopClippedSum(ModelImpl& model, const Batch& batch, FlatParameters* flat) {
  const int64_t n = batch.size();
  const torch::Tensor sum = torch::zeros_like(flat->grads());
  double loss_sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const Batch one = SliceBatch(batch, torch::tensor({i}, torch::kInt64).to(batch.labels.device()));
    flat->ZeroGrad();
    torch::Tensor loss = ComputeLoss(model.forward(one), one.labels, model.regression());
    loss.backward();
    torch::NoGradGuard no_grad;
    const double norm = flat->grads().norm().item<double>();
    sum.add_(flat->grads(), std::min(1.0, options_.max_grad_norm() / (norm + 1e-6)));
    loss_sum += loss.item<double>();
    clipped_ += norm > options_.max_grad_norm() ? 1 : 0;
  }
  torch::NoGradGuard no_grad;
  flat->grads().copy_(sum);
  examples_ += n;
  return loss_sum / static_cast<double>(n);
}

absl::Status AddSecureGaussianNoise(const torch::Tensor& values, double stddev, dp::SecureRng& rng) {
  if (!(stddev >= 0 && std::isfinite(stddev))) {
    return absl::InvalidArgumentError(absl::StrCat("noise stddev must be finite and >= 0, got ", stddev));
  }
  if (values.scalar_type() != torch::kFloat32 || !values.is_contiguous()) {
    return absl::InvalidArgumentError("noise target must be a contiguous float32 tensor");
  }
  torch::NoGradGuard no_grad;
  const int64_t total = values.numel();
  // Generated on the CPU (the CSPRNG is there), straight into `values` when it is on the CPU.
  const torch::Tensor target = values.is_cpu() ? values.view({-1}) : torch::zeros({total}, torch::kFloat32);
  // The vector is cut into fixed-size spans, each with its own ChaCha20 stream keyed by 32 bytes
  // of `rng`: the spans fill in parallel, and a seed gives the same noise with any thread count.
  const int64_t spans = (total + kNoiseSpan - 1) / kNoiseSpan;
  std::vector<std::array<uint8_t, dp::SecureRng::kKeySize>> keys(spans);
  for (auto& key : keys) {
    for (size_t w = 0; w < key.size() / 8; ++w) {
      const uint64_t word = rng();
      std::memcpy(key.data() + 8 * w, &word, 8);
    }
  }
  std::atomic<bool> failed{false};
  at::parallel_for(0, spans, 1, [&](int64_t begin, int64_t end) {
    // Box–Muller (Box & Muller 1958) on pairs of 53-bit uniforms, a chunk at a time so the
    // double-precision scratch stays small: z = √(-2 ln u₁)·(cos 2πu₂, sin 2πu₂).
    constexpr int64_t kPairs = 1 << 13;
    const torch::Tensor uniforms = torch::empty({2 * kPairs}, torch::kFloat64);
    double* u = uniforms.data_ptr<double>();
    for (int64_t span = begin; span < end; ++span) {
      absl::StatusOr<dp::SecureRng> stream = dp::SecureRng::CreateFromKey(keys[span]);
      OPENSSL_cleanse(keys[span].data(), keys[span].size());
      if (!stream.ok()) {
        failed = true;
        return;
      }
      const int64_t first = span * kNoiseSpan, length = std::min(kNoiseSpan, total - first);
      for (int64_t offset = 0; offset < length; offset += 2 * kPairs) {
        const int64_t count = std::min<int64_t>(2 * kPairs, length - offset), pairs = (count + 1) / 2;
        for (int64_t i = 0; i < 2 * pairs; ++i) u[i] = stream->UniformOpen01();
        const torch::Tensor radius = uniforms.narrow(0, 0, pairs).log().mul_(-2.0).sqrt_().mul_(stddev);
        const torch::Tensor angle = uniforms.narrow(0, pairs, pairs).mul(2.0 * std::numbers::pi);
        const torch::Tensor noise = at::cat({radius * angle.cos(), radius * angle.sin()}).narrow(0, 0, count);
        target.narrow(0, first + offset, count).add_(noise.to(torch::kFloat32));
      }
      std::memset(u, 0, sizeof(double) * 2 * kPairs);
    }
  });
  if (failed) return absl::InternalError("cannot key a ChaCha20 stream for DP noise");
  if (!values.is_cpu()) values.view({-1}).add_(target.to(values.device()));
  return absl::OkStatus();
}

absl::StatusOr<PoissonSampler> PoissonSampler::Create(int64_t population, double rate, std::optional<uint64_t> seed) {
  if (population < 1) return absl::InvalidArgumentError("Poisson sampling needs at least one example");
  if (!(rate > 0 && rate <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("sampling rate must be in (0, 1], got ", rate));
  }
  ASSIGN_OR_RETURN(dp::SecureRng rng, MakeRng(seed));
  return PoissonSampler(population, rate, std::move(rng));
}

std::vector<int64_t> PoissonSampler::Next() {
  std::vector<int64_t> out;
  if (rate_ >= 1) {
    out.resize(population_);
    for (int64_t i = 0; i < population_; ++i) out[i] = i;
    return out;
  }
  // Gaps between selected indices are geometric: P(gap > k) = (1 - q)^k, i.e.
  // gap - 1 = floor(ln u / ln(1 - q)) for u uniform in (0, 1) — the same law as one Bernoulli(q)
  // draw per index, in O(qN) draws.
  const double log_keep = std::log1p(-rate_);
  double next = -1;
  while (true) {
    next += 1.0 + std::floor(std::log(rng_.UniformOpen01()) / log_keep);
    if (next >= static_cast<double>(population_)) break;
    out.push_back(static_cast<int64_t>(next));
  }
  return out;
}

}  // namespace fedattn::models
