// Local training: AdamW on one flat parameter buffer, warm-up + linear/cosine decay, gradient
// clipping, evaluation, progress output. Deterministic for a given seed, thread count and device.
//
// Every trainable parameter (and its gradient) is a view into one flat buffer (FlatParameters),
// so the optimizer step is a handful of kernels and the update a site sends — the flat vector
// that DP, secure aggregation and the wire want — is there without copies. The gradient of a
// batch is computed by a GradientStep; DP-SGD replaces the default (loss.backward()) by one that
// clips per-example gradients and adds noise, writing into the same flat gradient.
//
// Not thread-safe: a Trainer and its model belong to one thread (intra-op threads are LibTorch's).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <torch/types.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fedattn/models/batch.h"
#include "fedattn/models/model_spec.h"
#include "fedattn/models/train_progress.h"
#include "fedattn/models/transformer.h"

namespace fedattn::config {
class MapReader;
}
namespace fedattn::parallel {
class Collective;
}

namespace fedattn::models {

// AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization", Algorithm 2).
struct AdamWOptions {
  absl::Status Validate() const;

  FEDATTN_ARG(double, lr) = 1e-3;           // peak learning rate
  FEDATTN_ARG(double, weight_decay) = 0.01;  // decoupled; applied to matrices only, not biases/norms
  FEDATTN_ARG(double, beta1) = 0.9;
  FEDATTN_ARG(double, beta2) = 0.999;
  FEDATTN_ARG(double, eps) = 1e-8;
};

enum class LrDecay { kConstant, kLinear, kCosine };

struct TrainerOptions {
  absl::Status Validate() const;

  FEDATTN_ARG(AdamWOptions, optimizer) = AdamWOptions();
  FEDATTN_ARG(int64_t, epochs) = 10;
  FEDATTN_ARG(int64_t, batch_size) = 32;
  FEDATTN_ARG(int64_t, eval_batch_size) = 256;
  FEDATTN_ARG(int64_t, warmup_steps) = 0;  // linear warm-up from 0 to lr
  FEDATTN_ARG(LrDecay, decay) = LrDecay::kLinear;  // after warm-up, down to min_lr_ratio * lr
  FEDATTN_ARG(double, min_lr_ratio) = 0.0;
  FEDATTN_ARG(double, max_grad_norm) = 1.0;  // global L2 clip of each batch gradient; 0 = off
  FEDATTN_ARG(uint64_t, seed) = 0;           // initialisation, shuffling, dropout
  FEDATTN_ARG(int64_t, threads) = 0;         // intra-op threads; 0 = the CPUs this process may use
  FEDATTN_ARG(std::string, device) = "cpu";  // cpu | cuda | auto
  FEDATTN_ARG(bool, bf16) = true;            // bf16 autocast on CUDA (ignored on CPU)
  FEDATTN_ARG(int64_t, log_every) = 10;      // progress line every N steps; 0 = epochs only
  FEDATTN_ARG(int64_t, positive_class) = 1;  // binary ROC-AUC scores this class
};

// DP-SGD mode of the trainer (dp_sgd.h): Poisson sampling at rate q, per-example clipping to C,
// Gaussian noise σC. Exactly one of sampling_rate and expected_batch_size is set.
struct DpSgdOptions {
  absl::Status Validate() const;

  FEDATTN_ARG(double, noise_multiplier) = 1.0;  // σ >= 0 (0 clips without noise: no privacy)
  FEDATTN_ARG(double, max_grad_norm) = 1.0;     // C > 0, per example
  FEDATTN_ARG(double, sampling_rate) = 0.0;     // q in (0, 1]; 0 = expected_batch_size / N
  FEDATTN_ARG(double, expected_batch_size) = 0.0;  // qN, used when sampling_rate is 0
  FEDATTN_ARG(int64_t, steps) = 0;  // noisy steps; 0 = TrainerOptions::epochs * round(1/q)
  FEDATTN_ARG(std::optional<uint64_t>, seed) = std::nullopt;  // tests only; unset = RAND_bytes
};

// What a DP-SGD Fit did: the accountant's inputs (dp::GaussianSteps: q, σ, steps) and what it saw.
struct DpSgdSummary {
  double sampling_rate = 0, noise_multiplier = 0, max_grad_norm = 0;
  int64_t steps = 0;             // noisy steps, each on a Poisson-sampled batch (possibly empty)
  int64_t sampled_examples = 0;  // sum of the batch sizes
  int64_t empty_batches = 0;
  double clipped_fraction = 0;   // share of sampled examples whose gradient norm exceeded C
};

// Reads a `trainer:` mapping (see configs/train/*.yaml) into options.
void ReadTrainerOptions(config::MapReader& reader, TrainerOptions* options);

// Learning rate at optimizer step `step` (0-based) of `total_steps`.
double LearningRateAt(const TrainerOptions& options, int64_t step, int64_t total_steps);

// Sets LibTorch's intra-op threads to `threads`, or to the CPUs in this process's affinity mask
// when 0, and returns the number used. Passive OpenMP waiting must be in the environment before
// the process starts (OMP_WAIT_POLICY=passive; see EnsurePassiveOpenMpWait in central_training.h).
int ConfigureThreads(int64_t threads);

// glibc hands every freed block above its mmap threshold (a few MiB, moved at run time) back to
// the kernel, so a training step's large temporaries are mapped and faulted in again, page by
// page, at every step: on the shared virtual machines this was measured on, that doubled step
// times (and cost DP-SGD, which has more such temporaries, more). This keeps freed memory in the
// heap for reuse instead (mallopt: a fixed 32 MiB mmap threshold, the most glibc allows; no
// trimming; 64 MiB top pad). Peak RSS stays about the same, but the process keeps its peak.
// Trainer::Create calls it; idempotent.
void RetainFreedMemory();

// The trainable parameters of a module, rebound as views into one contiguous buffer, with
// gradients as views into a second one. Layout: trainable named_parameters() in order, which is
// ModelSpec::TrainableTensors().
class FlatParameters {
 public:
  // Rebinds every parameter with requires_grad of `module` (the module must outlive this).
  [[nodiscard]] static absl::StatusOr<FlatParameters> Create(torch::nn::Module& module);

  const torch::Tensor& params() const { return params_; }  // [P] float32
  const torch::Tensor& grads() const { return grads_; }    // [P] float32
  // [offset, offset + count) ranges of params() that take weight decay (matrices, not biases or
  // norms), adjacent ones merged.
  const std::vector<std::pair<int64_t, int64_t>>& decay_ranges() const { return decay_ranges_; }
  const std::vector<TensorSpec>& layout() const { return layout_; }
  void ZeroGrad() { grads_.zero_(); }
  // True while every parameter's .grad() is still a view of grads() (autograd accumulates in place).
  bool GradsBound() const;
  // The parameters, in layout order (each a view into params()).
  const std::vector<torch::Tensor>& parameters() const { return views_; }
  // Leaves every parameter's .grad() undefined (DP-SGD: a gradient that autograd then puts there
  // came from an operation without per-example support), and binds them back to views of grads().
  void UnbindGrads();
  void BindGrads();

 private:
  torch::Tensor params_, grads_;
  std::vector<std::pair<int64_t, int64_t>> decay_ranges_;
  std::vector<TensorSpec> layout_;
  std::vector<torch::Tensor> views_;
};

// AdamW over a FlatParameters: about eight kernels per step whatever the model.
class FlatAdamW {
 public:
  FlatAdamW(FlatParameters* flat, const AdamWOptions& options);
  void Step(double lr);
  int64_t steps() const { return steps_; }

 private:
  FlatParameters* flat_;
  AdamWOptions options_;
  torch::Tensor exp_avg_, exp_avg_sq_, denom_;  // denom_: scratch, kept to avoid a large allocation per step
  int64_t steps_ = 0;
};

// Cross-entropy for classification, MSE for regression. reduction: mean over the batch, or per
// example ([B]) for DP-SGD.
torch::Tensor ComputeLoss(const torch::Tensor& logits, const torch::Tensor& labels, bool regression,
                          bool per_example = false);

// Computes one batch's gradient into flat->grads() (zeroed by the caller) and returns the mean loss.
class GradientStep {
 public:
  virtual ~GradientStep() = default;
  [[nodiscard]] virtual absl::StatusOr<double> Compute(ModelImpl& model, const Batch& batch,
                                                       FlatParameters* flat) = 0;
};

// The default: mean loss, backward(), then global-norm clipping (if max_grad_norm > 0).
class BackwardStep : public GradientStep {
 public:
  explicit BackwardStep(double max_grad_norm) : max_grad_norm_(max_grad_norm) {}
  absl::StatusOr<double> Compute(ModelImpl& model, const Batch& batch, FlatParameters* flat) override;

 private:
  double max_grad_norm_;
};

struct Metrics {
  int64_t examples = 0;
  double loss = 0;
  // Classification.
  double accuracy = 0, macro_f1 = 0;
  double roc_auc = 0;  // binary: of the positive class; multi-class: macro one-vs-rest; NaN if undefined
  // Regression.
  double rmse = 0, r2 = 0;
  bool regression = false;
  std::string ToString() const;
};

// Metrics of logits [N, C] (classification) or [N, 1] (regression) against labels [N].
Metrics ComputeMetrics(const torch::Tensor& logits, const torch::Tensor& labels, bool regression,
                       int64_t positive_class = 1);

struct EpochRecord {
  int64_t epoch = 0;
  double train_loss = 0;
  Metrics validation;
};

struct TrainResult {
  std::vector<EpochRecord> history;
  Metrics validation;  // after the last epoch
  int64_t steps = 0;
  double seconds = 0;
  std::optional<DpSgdSummary> dp_sgd;  // set by a DP-SGD Fit
};

class DpSgdStep;
class PoissonSampler;

class Trainer {
 public:
  // Moves the model to the configured device, rebinds its parameters (FlatParameters) and seeds.
  // `progress` (may be null) receives one line per log_every steps and per epoch.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Trainer>> Create(std::shared_ptr<ModelImpl> model,
                                                                       const TrainerOptions& options,
                                                                       std::ostream* progress);
  ~Trainer();
  // Replaces the gradient computation (and leaves DP-SGD mode). REQUIRES: not null.
  void set_gradient_step(std::unique_ptr<GradientStep> step);
  // Switches to DP-SGD (dp_sgd.h): Fit samples each step's batch by Poisson sampling and takes
  // options.steps noisy steps; TrainStep computes DpSgdStep's gradient; TrainerOptions::batch_size
  // and max_grad_norm (global clipping) no longer apply. Errors: InvalidArgument for invalid
  // options; Internal if the CSPRNG cannot be seeded.
  [[nodiscard]] absl::Status EnableDpSgd(const DpSgdOptions& options);
  // Runs after every batch gradient (plain or DP-SGD) and before the optimizer step: for terms of
  // the objective that do not depend on the data, such as FedProx's proximal term, which then
  // leave DP-SGD's guarantee unchanged.
  using GradientHook = std::function<void(FlatParameters* flat)>;
  void AddGradientHook(GradientHook hook) { gradient_hooks_.push_back(std::move(hook)); }
  bool dp_sgd() const { return dp_options_.has_value(); }
  // Receives a TrainProgress after every optimizer step of Fit (empty: none), e.g. to draw a
  // progress bar; independent of the `progress` stream's log lines.
  void set_progress_callback(TrainProgressCallback callback) { progress_callback_ = std::move(callback); }
  // Data-parallel training over `collective`'s ranks (not owned, must outlive the trainer; null
  // or size 1 = this process alone). Every rank calls Fit with the same data and options; each
  // computes the gradient of its part of every global batch, the sums are all-reduced, and every
  // rank takes the same step (data_parallel.h). DP-SGD: rank 0 draws the Poisson sample and adds
  // the noise, once, to the sum (docs/privacy.md). Validation runs on rank 0 only. A failure on
  // any rank fails Fit on every rank with that rank's error ("rank N: ..."); a dead rank, with
  // the collective's DeadlineExceeded. Reseeds dropout per rank.
  void set_collective(parallel::Collective* collective);
  // Copies rank 0's weights (parameters and buffers) to every rank; call before Fit when the
  // ranks may start from different weights.
  [[nodiscard]] absl::Status SyncModel();

  // Trains for options.epochs over `train` (whole-dataset tensors, shuffled per epoch), evaluating
  // on `validation` after each epoch when it is not empty. In DP-SGD mode: DpSgdOptions::steps
  // steps on Poisson-sampled batches, an "epoch" being round(1/q) steps; first checks on two
  // examples that every trainable parameter can be clipped per example (FailedPrecondition
  // naming the parameter otherwise); the result's dp_sgd holds what the accountant needs.
  [[nodiscard]] absl::StatusOr<TrainResult> Fit(const Batch& train, const Batch& validation);
  // One optimizer step on one batch at learning rate `lr`; returns the loss.
  [[nodiscard]] absl::StatusOr<double> TrainStep(const Batch& batch, double lr);
  [[nodiscard]] absl::StatusOr<Metrics> Evaluate(const Batch& data);

  ModelImpl& model() { return *model_; }
  FlatParameters& flat() { return flat_; }
  const torch::Device& device() const { return device_; }

 private:
  Trainer(std::shared_ptr<ModelImpl> model, TrainerOptions options, std::ostream* progress, torch::Device device,
          FlatParameters flat);
  absl::StatusOr<TrainResult> FitImpl(const Batch& train, const Batch& validation);
  absl::StatusOr<TrainResult> FitDpSgd(const Batch& train, const Batch& validation);
  // Data-parallel: one optimizer step on the global batch `indices` of `data` (data_parallel.cc).
  absl::StatusOr<double> ParallelStep(const Batch& data, const torch::Tensor& indices, double lr);
  absl::StatusOr<std::vector<int64_t>> ParallelSample(PoissonSampler& sampler);
  bool parallel() const;
  bool leader() const;

  std::shared_ptr<ModelImpl> model_;
  TrainerOptions options_;
  std::ostream* progress_;
  torch::Device device_;
  FlatParameters flat_;
  FlatAdamW optimizer_;
  std::unique_ptr<GradientStep> gradient_step_;
  std::vector<GradientHook> gradient_hooks_;
  std::optional<DpSgdOptions> dp_options_;  // set in DP-SGD mode
  DpSgdStep* dp_step_ = nullptr;            // gradient_step_, in DP-SGD mode
  TrainProgressCallback progress_callback_;
  int64_t progress_examples_ = 0;  // examples seen in the current Fit, for progress_callback_
  void ReportProgress(int64_t epoch, int64_t epochs, int64_t step, int64_t total_steps, double loss, int64_t count,
                      std::chrono::steady_clock::time_point start);
  parallel::Collective* collective_ = nullptr;  // data-parallel ranks; null = this process alone
};

// Rows `indices` of every defined field; text batches are trimmed to their longest sequence.
Batch SliceBatch(const Batch& data, const torch::Tensor& indices);

}  // namespace fedattn::models
