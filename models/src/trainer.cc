#include "fedattn/models/trainer.h"

#include <malloc.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <numeric>
#include <random>

#include <ATen/autocast_mode.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/config/yaml_reader.h"
#include "fedattn/models/data_parallel.h"
#include "fedattn/models/dp_sgd.h"
#include "status_util.h"

namespace fedattn::models {
namespace {

// Mann-Whitney U statistic over ranks with ties averaged: P(score+ > score-) + 0.5 P(=).
double BinaryAuc(const std::vector<double>& scores, const std::vector<bool>& positive) {
  const size_t n = scores.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double rank_sum = 0;
  int64_t positives = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && scores[order[j]] == scores[order[i]]) ++j;
    const double rank = 0.5 * static_cast<double>(i + j + 1);  // average of 1-based ranks i+1..j
    for (size_t k = i; k < j; ++k) {
      if (positive[order[k]]) rank_sum += rank, ++positives;
    }
    i = j;
  }
  const int64_t negatives = static_cast<int64_t>(n) - positives;
  if (positives == 0 || negatives == 0) return std::nan("");
  return (rank_sum - 0.5 * positives * (positives + 1)) / (static_cast<double>(positives) * negatives);
}

uint64_t UniformBelow(std::mt19937_64& engine, uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = engine(); while (x >= limit);
  return x % n;
}

}  // namespace

absl::Status AdamWOptions::Validate() const {
  if (!(lr_ > 0)) return absl::InvalidArgumentError("optimizer.lr must be > 0");
  if (weight_decay_ < 0) return absl::InvalidArgumentError("optimizer.weight_decay must be >= 0");
  if (beta1_ < 0 || beta1_ >= 1 || beta2_ < 0 || beta2_ >= 1) {
    return absl::InvalidArgumentError("optimizer.beta1 and beta2 must be in [0, 1)");
  }
  if (!(eps_ > 0)) return absl::InvalidArgumentError("optimizer.eps must be > 0");
  return absl::OkStatus();
}

absl::Status TrainerOptions::Validate() const {
  RETURN_IF_ERROR(optimizer_.Validate());
  if (epochs_ < 1 || batch_size_ < 1 || eval_batch_size_ < 1) {
    return absl::InvalidArgumentError("epochs, batch_size and eval_batch_size must be >= 1");
  }
  if (warmup_steps_ < 0 || min_lr_ratio_ < 0 || min_lr_ratio_ > 1 || max_grad_norm_ < 0 || threads_ < 0) {
    return absl::InvalidArgumentError(
        "warmup_steps, max_grad_norm and threads must be >= 0, min_lr_ratio in [0, 1]");
  }
  if (device_ != "cpu" && device_ != "cuda" && device_ != "auto") {
    return absl::InvalidArgumentError(absl::StrCat("device must be cpu, cuda or auto, got '", device_, "'"));
  }
  return absl::OkStatus();
}

absl::Status DpSgdOptions::Validate() const {
  if (!(noise_multiplier_ >= 0 && std::isfinite(noise_multiplier_))) {
    return absl::InvalidArgumentError("dp_sgd.noise_multiplier must be finite and >= 0");
  }
  if (!(max_grad_norm_ > 0 && std::isfinite(max_grad_norm_))) {
    return absl::InvalidArgumentError("dp_sgd.max_grad_norm must be finite and > 0");
  }
  if (!(sampling_rate_ >= 0 && sampling_rate_ <= 1) || !(expected_batch_size_ >= 0 && std::isfinite(expected_batch_size_))) {
    return absl::InvalidArgumentError("dp_sgd.sampling_rate must be in (0, 1] and expected_batch_size > 0");
  }
  if ((sampling_rate_ > 0) == (expected_batch_size_ > 0)) {
    return absl::InvalidArgumentError("dp_sgd: set exactly one of sampling_rate and expected_batch_size");
  }
  if (steps_ < 0) return absl::InvalidArgumentError("dp_sgd.steps must be >= 0");
  return absl::OkStatus();
}

void ReadTrainerOptions(config::MapReader& reader, TrainerOptions* options) {
  reader.Optional("epochs", &options->epochs(), 1, 1 << 20);
  reader.Optional("batch_size", &options->batch_size(), 1, 1 << 20);
  reader.Optional("eval_batch_size", &options->eval_batch_size(), 1, 1 << 20);
  reader.Optional("warmup_steps", &options->warmup_steps(), 0, INT64_MAX);
  std::string decay = options->decay() == LrDecay::kConstant ? "constant"
                      : options->decay() == LrDecay::kCosine ? "cosine"
                                                             : "linear";
  reader.OptionalEnum("decay", &decay, {"constant", "linear", "cosine"});
  options->decay(decay == "constant" ? LrDecay::kConstant : decay == "cosine" ? LrDecay::kCosine : LrDecay::kLinear);
  reader.Optional("min_lr_ratio", &options->min_lr_ratio(), 0.0, 1.0);
  reader.Optional("max_grad_norm", &options->max_grad_norm(), 0.0, 1e12);
  int64_t seed = static_cast<int64_t>(options->seed());
  reader.Optional("seed", &seed, 0, INT64_MAX);
  options->seed(static_cast<uint64_t>(seed));
  reader.Optional("threads", &options->threads(), 0, 4096);
  reader.OptionalEnum("device", &options->device(), {"cpu", "cuda", "auto"});
  reader.Optional("bf16", &options->bf16());
  reader.Optional("log_every", &options->log_every(), 0, INT64_MAX);
  if (reader.Has("optimizer")) {
    config::MapReader optimizer = reader.Map("optimizer");
    AdamWOptions& adamw = options->optimizer();
    optimizer.Optional("lr", &adamw.lr(), 1e-12, 10.0);
    optimizer.Optional("weight_decay", &adamw.weight_decay(), 0.0, 10.0);
    optimizer.Optional("beta1", &adamw.beta1(), 0.0, 0.999999);
    optimizer.Optional("beta2", &adamw.beta2(), 0.0, 0.999999);
    optimizer.Optional("eps", &adamw.eps(), 1e-30, 1.0);
  }
}

double LearningRateAt(const TrainerOptions& options, int64_t step, int64_t total_steps) {
  const double peak = options.optimizer().lr();
  const int64_t warmup = options.warmup_steps();
  if (step < warmup) return peak * static_cast<double>(step + 1) / static_cast<double>(warmup + 1);
  if (options.decay() == LrDecay::kConstant || total_steps <= warmup) return peak;
  const double progress = std::clamp(static_cast<double>(step - warmup) / static_cast<double>(total_steps - warmup), 0.0, 1.0);
  const double floor = options.min_lr_ratio();
  const double shape = options.decay() == LrDecay::kCosine ? 0.5 * (1.0 + std::cos(M_PI * progress)) : 1.0 - progress;
  return peak * (floor + (1.0 - floor) * shape);
}

void RetainFreedMemory() {
  static std::once_flag once;
  std::call_once(once, [] {
    // 32 MiB is the largest mmap threshold glibc accepts (half its per-arena heap size); a fixed
    // one also stops glibc from moving it. Larger blocks are still mapped and unmapped each time.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, INT_MAX);
    mallopt(M_TOP_PAD, 64 << 20);
  });
}

int ConfigureThreads(int64_t threads) {
  int n = static_cast<int>(threads);
  if (n <= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
  }
  n = std::max(n, 1);
  at::set_num_threads(n);
  return n;
}

absl::StatusOr<FlatParameters> FlatParameters::Create(torch::nn::Module& module) {
  FlatParameters flat;
  std::vector<torch::Tensor> params;
  int64_t total = 0;
  for (const auto& item : module.named_parameters()) {
    if (!item.value().requires_grad()) continue;
    const torch::Tensor& p = item.value();
    if (p.scalar_type() != torch::kFloat32) {
      return absl::InvalidArgumentError(absl::StrCat("parameter '", item.key(), "' is not float32"));
    }
    flat.layout_.push_back(TensorSpec{item.key(), DType::kF32, p.sizes().vec(), true});
    params.push_back(p);
    total += p.numel();
  }
  if (params.empty()) return absl::InvalidArgumentError("model has no trainable parameters");
  try {
    torch::NoGradGuard no_grad;
    const auto options = params[0].options().requires_grad(false);
    flat.params_ = torch::empty({total}, options);
    flat.grads_ = torch::zeros({total}, options);
    int64_t offset = 0;
    for (torch::Tensor& p : params) {
      const int64_t n = p.numel();
      torch::Tensor view = flat.params_.narrow(0, offset, n);
      view.copy_(p.detach().reshape({n}));
      if (p.dim() >= 2) {
        if (!flat.decay_ranges_.empty() && flat.decay_ranges_.back().first + flat.decay_ranges_.back().second == offset) {
          flat.decay_ranges_.back().second += n;
        } else {
          flat.decay_ranges_.emplace_back(offset, n);
        }
      }
      p.set_data(view.view(p.sizes()));
      flat.views_.push_back(p);
      offset += n;
    }
    flat.BindGrads();
  } catch (const c10::Error& e) {
    return FromTorch(e, "flattening parameters");
  }
  return flat;
}

bool FlatParameters::GradsBound() const {
  const auto* base = static_cast<const char*>(grads_.data_ptr());
  int64_t offset = 0;
  for (const torch::Tensor& p : views_) {
    if (!p.grad().defined() || static_cast<const char*>(p.grad().data_ptr()) != base + offset * 4) return false;
    offset += p.numel();
  }
  return true;
}

void FlatParameters::UnbindGrads() {
  for (torch::Tensor& p : views_) p.mutable_grad().reset();
}

void FlatParameters::BindGrads() {
  int64_t offset = 0;
  for (torch::Tensor& p : views_) {
    p.mutable_grad() = grads_.narrow(0, offset, p.numel()).view(p.sizes());
    offset += p.numel();
  }
}

FlatAdamW::FlatAdamW(FlatParameters* flat, const AdamWOptions& options)
    : flat_(flat),
      options_(options),
      exp_avg_(torch::zeros_like(flat->params())),
      exp_avg_sq_(torch::zeros_like(flat->params())),
      denom_(torch::empty_like(flat->params())) {}

void FlatAdamW::Step(double lr) {
  torch::NoGradGuard no_grad;
  ++steps_;
  const double beta1 = options_.beta1(), beta2 = options_.beta2();
  const double correction1 = 1.0 - std::pow(beta1, static_cast<double>(steps_));
  const double correction2 = 1.0 - std::pow(beta2, static_cast<double>(steps_));
  const torch::Tensor& p = flat_->params();
  const torch::Tensor& g = flat_->grads();
  if (options_.weight_decay() > 0) {
    for (const auto& [offset, count] : flat_->decay_ranges()) p.narrow(0, offset, count).mul_(1.0 - lr * options_.weight_decay());
  }
  exp_avg_.mul_(beta1).add_(g, 1.0 - beta1);
  exp_avg_sq_.mul_(beta2).addcmul_(g, g, 1.0 - beta2);
  at::sqrt_out(denom_, exp_avg_sq_).div_(std::sqrt(correction2)).add_(options_.eps());
  p.addcdiv_(exp_avg_, denom_, -lr / correction1);
}

torch::Tensor ComputeLoss(const torch::Tensor& logits, const torch::Tensor& labels, bool regression, bool per_example) {
  const auto reduction = per_example ? at::Reduction::None : at::Reduction::Mean;
  if (regression) return at::mse_loss(logits.squeeze(-1).to(torch::kFloat32), labels.to(torch::kFloat32), reduction);
  return at::cross_entropy_loss(logits.to(torch::kFloat32), labels, {}, reduction);
}

absl::StatusOr<double> BackwardStep::Compute(ModelImpl& model, const Batch& batch, FlatParameters* flat) {
  torch::Tensor loss = ComputeLoss(model.forward(batch), batch.labels, model.regression());
  loss.backward();
  if (max_grad_norm_ > 0) {
    torch::NoGradGuard no_grad;
    const double norm = flat->grads().norm().item<double>();
    if (norm > max_grad_norm_) flat->grads().mul_(max_grad_norm_ / (norm + 1e-6));
  }
  return loss.item<double>();
}

std::string Metrics::ToString() const {
  if (regression) return absl::StrFormat("loss %.4f rmse %.4f r2 %.4f (n=%d)", loss, rmse, r2, examples);
  return absl::StrFormat("loss %.4f accuracy %.4f macro_f1 %.4f roc_auc %.4f (n=%d)", loss, accuracy, macro_f1,
                         roc_auc, examples);
}

Metrics ComputeMetrics(const torch::Tensor& logits_in, const torch::Tensor& labels_in, bool regression,
                       int64_t positive_class) {
  torch::NoGradGuard no_grad;
  const torch::Tensor logits = logits_in.detach().to(torch::kCPU, torch::kFloat32);
  Metrics m;
  m.regression = regression;
  m.examples = logits.size(0);
  if (m.examples == 0) return m;
  m.loss = ComputeLoss(logits, labels_in.to(torch::kCPU), regression).item<double>();
  if (regression) {
    const torch::Tensor pred = logits.squeeze(-1).to(torch::kFloat64);
    const torch::Tensor target = labels_in.to(torch::kCPU, torch::kFloat64);
    const double sse = (pred - target).pow(2).sum().item<double>();
    const double sst = (target - target.mean()).pow(2).sum().item<double>();
    m.rmse = std::sqrt(sse / static_cast<double>(m.examples));
    m.r2 = sst > 0 ? 1.0 - sse / sst : std::nan("");
    return m;
  }
  const torch::Tensor labels = labels_in.to(torch::kCPU, torch::kInt64).contiguous();
  const torch::Tensor probs = at::softmax(logits, -1).to(torch::kFloat64).contiguous();
  const torch::Tensor predicted = logits.argmax(-1).contiguous();
  const int64_t classes = logits.size(1);
  const int64_t* y = labels.data_ptr<int64_t>();
  const int64_t* p = predicted.data_ptr<int64_t>();
  const double* prob = probs.data_ptr<double>();
  std::vector<int64_t> tp(classes), fp(classes), fn(classes);
  int64_t correct = 0;
  for (int64_t i = 0; i < m.examples; ++i) {
    if (y[i] == p[i]) {
      ++correct, ++tp[y[i]];
    } else {
      ++fp[p[i]], ++fn[y[i]];
    }
  }
  m.accuracy = static_cast<double>(correct) / static_cast<double>(m.examples);
  // Macro-F1 over the classes present in labels or predictions (sklearn's convention).
  double f1_sum = 0;
  int64_t present = 0;
  for (int64_t c = 0; c < classes; ++c) {
    if (tp[c] + fp[c] + fn[c] == 0) continue;
    ++present;
    f1_sum += 2.0 * tp[c] / static_cast<double>(2 * tp[c] + fp[c] + fn[c]);
  }
  m.macro_f1 = present ? f1_sum / present : 0;
  auto auc_of = [&](int64_t c) {
    std::vector<double> scores(m.examples);
    std::vector<bool> positive(m.examples);
    for (int64_t i = 0; i < m.examples; ++i) scores[i] = prob[i * classes + c], positive[i] = y[i] == c;
    return BinaryAuc(scores, positive);
  };
  if (classes == 2) {
    m.roc_auc = auc_of(std::clamp<int64_t>(positive_class, 0, 1));
  } else {
    double sum = 0;
    int64_t defined = 0;
    for (int64_t c = 0; c < classes; ++c) {
      const double auc = auc_of(c);
      if (!std::isnan(auc)) sum += auc, ++defined;
    }
    m.roc_auc = defined ? sum / defined : std::nan("");
  }
  return m;
}

Batch SliceBatch(const Batch& data, const torch::Tensor& indices) {
  auto take = [&](const torch::Tensor& t) { return t.defined() ? t.index_select(0, indices) : t; };
  Batch batch{take(data.input_ids), take(data.token_type_ids), take(data.attention_mask),
              take(data.numeric),   take(data.categorical),    take(data.labels)};
  if (batch.attention_mask.defined() && batch.attention_mask.size(0) > 0) {
    // Right-padded sequences: drop the columns that are padding in every row.
    const int64_t longest = batch.attention_mask.sum(1).max().item<int64_t>();
    if (longest < batch.attention_mask.size(1)) {
      batch.input_ids = batch.input_ids.narrow(1, 0, longest);
      batch.attention_mask = batch.attention_mask.narrow(1, 0, longest);
      if (batch.token_type_ids.defined()) batch.token_type_ids = batch.token_type_ids.narrow(1, 0, longest);
    }
  }
  return batch;
}

Trainer::Trainer(std::shared_ptr<ModelImpl> model, TrainerOptions options, std::ostream* progress,
                 torch::Device device, FlatParameters flat)
    : model_(std::move(model)),
      options_(std::move(options)),
      progress_(progress),
      device_(device),
      flat_(std::move(flat)),
      optimizer_(&flat_, options_.optimizer()),
      gradient_step_(std::make_unique<BackwardStep>(options_.max_grad_norm())) {}

Trainer::~Trainer() = default;

void Trainer::set_gradient_step(std::unique_ptr<GradientStep> step) {
  gradient_step_ = std::move(step);
  dp_options_.reset();
  dp_step_ = nullptr;
}

absl::Status Trainer::EnableDpSgd(const DpSgdOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  ASSIGN_OR_RETURN(std::unique_ptr<DpSgdStep> step,
                   DpSgdStep::Create(DpSgdStepOptions()
                                         .noise_multiplier(options.noise_multiplier())
                                         .max_grad_norm(options.max_grad_norm())
                                         .expected_batch_size(options.expected_batch_size())
                                         .seed(options.seed())));
  dp_step_ = step.get();
  gradient_step_ = std::move(step);
  dp_options_ = options;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(std::shared_ptr<ModelImpl> model,
                                                         const TrainerOptions& options, std::ostream* progress) {
  RETURN_IF_ERROR(options.Validate());
  if (model == nullptr) return absl::InvalidArgumentError("no model");
  const bool cuda = torch::cuda::is_available();
  if (options.device() == "cuda" && !cuda) {
    return absl::FailedPreconditionError("device: cuda requested, but this build or machine has no CUDA device");
  }
  // Under mpirun each rank takes the GPU of its local rank (docs/multi-gpu.md); alone, GPU 0.
  const torch::Device device = (options.device() != "cpu" && cuda) ? torch::Device(torch::kCUDA, LocalCudaDevice())
                                                                    : torch::Device(torch::kCPU);
  ConfigureThreads(options.threads());
  RetainFreedMemory();
  try {
    torch::manual_seed(options.seed());
    model->to(device);
    model->train();
  } catch (const c10::Error& e) {
    return FromTorch(e, "moving the model to the device");
  }
  ASSIGN_OR_RETURN(FlatParameters flat, FlatParameters::Create(*model));
  return std::unique_ptr<Trainer>(new Trainer(std::move(model), options, progress, device, std::move(flat)));
}

absl::StatusOr<double> Trainer::TrainStep(const Batch& batch, double lr) {
  try {
    flat_.ZeroGrad();
    const bool autocast = device_.is_cuda() && options_.bf16();
    if (autocast) {
      at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
      at::autocast::set_enabled(true);
    }
    absl::StatusOr<double> loss = gradient_step_->Compute(*model_, batch, &flat_);
    if (autocast) {
      at::autocast::set_enabled(false);
      at::autocast::clear_cache();
    }
    if (!loss.ok()) return loss.status();
    if (!std::isfinite(*loss)) return absl::InternalError(absl::StrCat("loss is ", *loss, " (diverged)"));
    for (const GradientHook& hook : gradient_hooks_) hook(&flat_);
    optimizer_.Step(lr);
    return loss;
  } catch (const c10::Error& e) {
    return FromTorch(e, "training step");
  }
}

absl::StatusOr<Metrics> Trainer::Evaluate(const Batch& data) {
  try {
    torch::NoGradGuard no_grad;
    model_->eval();
    const int64_t n = data.size();
    std::vector<torch::Tensor> outputs;
    for (int64_t start = 0; start < n; start += options_.eval_batch_size()) {
      const int64_t count = std::min(options_.eval_batch_size(), n - start);
      const Batch batch = SliceBatch(data, torch::arange(start, start + count, torch::kInt64)).to(device_);
      outputs.push_back(model_->forward(batch).to(torch::kCPU, torch::kFloat32));
    }
    model_->train();
    if (outputs.empty()) return Metrics{};
    return ComputeMetrics(at::cat(outputs, 0), data.labels, model_->regression(), options_.positive_class());
  } catch (const c10::Error& e) {
    model_->train();
    return FromTorch(e, "evaluation");
  }
}

absl::StatusOr<TrainResult> Trainer::Fit(const Batch& train, const Batch& validation) {
  try {
    return dp_options_ ? FitDpSgd(train, validation) : FitImpl(train, validation);
  } catch (const c10::Error& e) {
    return FromTorch(e, "training");
  }
}

absl::StatusOr<TrainResult> Trainer::FitImpl(const Batch& train, const Batch& validation) {
  const int64_t n = train.size();
  if (n == 0) return absl::InvalidArgumentError("the training split is empty");
  const int64_t batches = (n + options_.batch_size() - 1) / options_.batch_size();
  const int64_t total_steps = batches * options_.epochs();
  std::mt19937_64 engine(options_.seed() ^ 0x9E3779B97F4A7C15ull);
  TrainResult result;
  const auto start = std::chrono::steady_clock::now();
  auto window_start = start;
  double window_loss = 0;
  int64_t window_steps = 0;
  for (int64_t epoch = 1; epoch <= options_.epochs(); ++epoch) {
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[UniformBelow(engine, i)]);
    const torch::Tensor permutation = torch::tensor(order, torch::kInt64);
    double epoch_loss = 0;
    for (int64_t b = 0; b < batches; ++b) {
      const int64_t begin = b * options_.batch_size();
      const int64_t count = std::min(options_.batch_size(), n - begin);
      const double lr = LearningRateAt(options_, result.steps, total_steps);
      double loss = 0;
      if (parallel()) {
        ASSIGN_OR_RETURN(loss, ParallelStep(train, permutation.narrow(0, begin, count), lr));
      } else {
        const Batch batch = SliceBatch(train, permutation.narrow(0, begin, count)).to(device_);
        ASSIGN_OR_RETURN(loss, TrainStep(batch, lr));
      }
      ++result.steps;
      epoch_loss += loss * static_cast<double>(count);
      window_loss += loss;
      ++window_steps;
      if (progress_callback_) ReportProgress(epoch, options_.epochs(), result.steps, total_steps, loss, count, start);
      if (progress_ != nullptr && options_.log_every() > 0 && result.steps % options_.log_every() == 0) {
        const auto now = std::chrono::steady_clock::now();
        const double ms = std::chrono::duration<double, std::milli>(now - window_start).count() / window_steps;
        *progress_ << absl::StrFormat("epoch %d/%d step %d/%d loss %.4f lr %.3g %.1f ms/step\n", epoch,
                                      options_.epochs(), result.steps, total_steps, window_loss / window_steps, lr, ms)
                   << std::flush;
        window_start = now;
        window_loss = 0;
        window_steps = 0;
      }
    }
    EpochRecord record;
    record.epoch = epoch;
    record.train_loss = epoch_loss / static_cast<double>(n);
    if (validation.size() > 0 && leader()) {
      ASSIGN_OR_RETURN(record.validation, Evaluate(validation));
    }
    if (progress_ != nullptr) {
      *progress_ << absl::StrFormat("epoch %d/%d train loss %.4f", epoch, options_.epochs(), record.train_loss);
      if (validation.size() > 0) *progress_ << " | validation " << record.validation.ToString();
      *progress_ << "\n" << std::flush;
    }
    result.validation = record.validation;
    result.history.push_back(record);
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

absl::StatusOr<TrainResult> Trainer::FitDpSgd(const Batch& train, const Batch& validation) {
  const DpSgdOptions& dp = *dp_options_;
  const int64_t n = train.size();
  if (n == 0) return absl::InvalidArgumentError("the training split is empty");
  const double q = dp.sampling_rate() > 0 ? dp.sampling_rate() : dp.expected_batch_size() / static_cast<double>(n);
  if (q > 1) {
    return absl::InvalidArgumentError(absl::StrCat("dp_sgd.expected_batch_size ", dp.expected_batch_size(),
                                                   " exceeds the ", n, " training examples"));
  }
  const int64_t per_epoch = std::max<int64_t>(1, std::llround(1.0 / q));
  const int64_t total_steps = dp.steps() > 0 ? dp.steps() : options_.epochs() * per_epoch;
  const int64_t epochs = (total_steps + per_epoch - 1) / per_epoch;
  dp_step_->set_expected_batch_size(q * static_cast<double>(n));
  // Refuse before the first step, naming the parameter, if a trainable one cannot be clipped per example.
  RETURN_IF_ERROR(
      dp_step_->CheckSupported(*model_, SliceBatch(train, torch::arange(std::min<int64_t>(n, 2))).to(device_), &flat_));
  flat_.ZeroGrad();
  dp_step_->ResetCounters();
  std::optional<uint64_t> sampler_seed;
  if (dp.seed()) sampler_seed = *dp.seed() ^ 0x5DEECE66Dull;
  ASSIGN_OR_RETURN(PoissonSampler sampler, PoissonSampler::Create(n, q, sampler_seed));
  DpSgdSummary summary;
  summary.sampling_rate = q;
  summary.noise_multiplier = dp.noise_multiplier();
  summary.max_grad_norm = dp.max_grad_norm();
  TrainResult result;
  const auto start = std::chrono::steady_clock::now();
  auto window_start = start;
  double window_loss = 0, epoch_loss = 0;
  int64_t window_steps = 0, epoch_examples = 0;
  for (int64_t step = 0; step < total_steps; ++step) {
    std::vector<int64_t> indices;
    if (parallel()) {
      ASSIGN_OR_RETURN(indices, ParallelSample(sampler));
    } else {
      indices = sampler.Next();
    }
    const int64_t count = static_cast<int64_t>(indices.size());
    const double lr = LearningRateAt(options_, step, total_steps);
    double loss = 0;
    if (parallel()) {
      ASSIGN_OR_RETURN(loss, ParallelStep(train, torch::tensor(indices, torch::kInt64), lr));
    } else {
      const Batch batch = count == 0 ? Batch{} : SliceBatch(train, torch::tensor(indices, torch::kInt64)).to(device_);
      ASSIGN_OR_RETURN(loss, TrainStep(batch, lr));
    }
    ++result.steps;
    summary.sampled_examples += count;
    summary.empty_batches += count == 0 ? 1 : 0;
    epoch_loss += loss * static_cast<double>(count);
    epoch_examples += count;
    window_loss += loss;
    ++window_steps;
    const int64_t epoch = step / per_epoch + 1;
    if (progress_callback_) ReportProgress(epoch, epochs, result.steps, total_steps, loss, count, start);
    if (progress_ != nullptr && options_.log_every() > 0 && result.steps % options_.log_every() == 0) {
      const auto now = std::chrono::steady_clock::now();
      const double ms = std::chrono::duration<double, std::milli>(now - window_start).count() / window_steps;
      *progress_ << absl::StrFormat("epoch %d/%d step %d/%d loss %.4f lr %.3g %.1f ms/step (DP-SGD)\n", epoch, epochs,
                                    result.steps, total_steps, window_loss / window_steps, lr, ms)
                 << std::flush;
      window_start = now;
      window_loss = 0;
      window_steps = 0;
    }
    if (result.steps % per_epoch != 0 && result.steps != total_steps) continue;
    EpochRecord record;
    record.epoch = epoch;
    record.train_loss = epoch_examples > 0 ? epoch_loss / static_cast<double>(epoch_examples) : 0;
    if (validation.size() > 0 && leader()) {
      ASSIGN_OR_RETURN(record.validation, Evaluate(validation));
    }
    if (progress_ != nullptr) {
      *progress_ << absl::StrFormat("epoch %d/%d train loss %.4f", epoch, epochs, record.train_loss);
      if (validation.size() > 0) *progress_ << " | validation " << record.validation.ToString();
      *progress_ << "\n" << std::flush;
    }
    result.validation = record.validation;
    result.history.push_back(record);
    epoch_loss = 0;
    epoch_examples = 0;
  }
  summary.steps = result.steps;
  summary.clipped_fraction = dp_step_->examples() > 0 ? static_cast<double>(dp_step_->clipped()) /
                                                            static_cast<double>(dp_step_->examples())
                                                      : 0.0;
  result.dp_sgd = summary;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

void Trainer::ReportProgress(int64_t epoch, int64_t epochs, int64_t step, int64_t total_steps, double loss,
                             int64_t count, std::chrono::steady_clock::time_point start) {
  if (step == 1) progress_examples_ = 0;
  progress_examples_ += count;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  TrainProgress progress;
  progress.epoch = epoch;
  progress.epochs = epochs;
  progress.step = step;
  progress.total_steps = total_steps;
  progress.loss = loss;
  progress.examples = progress_examples_;
  progress.examples_per_second = seconds > 0 ? static_cast<double>(progress_examples_) / seconds : 0;
  progress.dp_sgd = dp_sgd();
  progress_callback_(progress);
}

}  // namespace fedattn::models
