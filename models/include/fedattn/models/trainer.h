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

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <torch/types.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fedattn/models/batch.h"
#include "fedattn/models/model_spec.h"
#include "fedattn/models/transformer.h"

namespace fedattn::config {
class MapReader;
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

// Reads a `trainer:` mapping (see configs/train/*.yaml) into options.
void ReadTrainerOptions(config::MapReader& reader, TrainerOptions* options);

// Learning rate at optimizer step `step` (0-based) of `total_steps`.
double LearningRateAt(const TrainerOptions& options, int64_t step, int64_t total_steps);

// Sets LibTorch's intra-op threads to `threads`, or to the CPUs in this process's affinity mask
// when 0, and returns the number used. Passive OpenMP waiting must be in the environment before
// the process starts (OMP_WAIT_POLICY=passive; see EnsurePassiveOpenMpWait in central_training.h).
int ConfigureThreads(int64_t threads);

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
};

class Trainer {
 public:
  // Moves the model to the configured device, rebinds its parameters (FlatParameters) and seeds.
  // `progress` (may be null) receives one line per log_every steps and per epoch.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Trainer>> Create(std::shared_ptr<ModelImpl> model,
                                                                       const TrainerOptions& options,
                                                                       std::ostream* progress);
  // Replaces the gradient computation (DP-SGD). REQUIRES: not null.
  void set_gradient_step(std::unique_ptr<GradientStep> step) { gradient_step_ = std::move(step); }

  // Trains for options.epochs over `train` (whole-dataset tensors, shuffled per epoch), evaluating
  // on `validation` after each epoch when it is not empty.
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

  std::shared_ptr<ModelImpl> model_;
  TrainerOptions options_;
  std::ostream* progress_;
  torch::Device device_;
  FlatParameters flat_;
  FlatAdamW optimizer_;
  std::unique_ptr<GradientStep> gradient_step_;
};

// Rows `indices` of every defined field; text batches are trimmed to their longest sequence.
Batch SliceBatch(const Batch& data, const torch::Tensor& indices);

}  // namespace fedattn::models
