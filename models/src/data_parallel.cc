#include "fedattn/models/data_parallel.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <ATen/autocast_mode.h>
#include <torch/cuda.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/models/dp_sgd.h"
#include "fedattn/models/trainer.h"
#include "fedattn/parallel/collective.h"
#include "status_util.h"

namespace fedattn::models {
namespace {

absl::Status BroadcastTensor(parallel::Collective& collective, const torch::Tensor& tensor) {
  torch::NoGradGuard no_grad;
  const bool direct = tensor.scalar_type() == torch::kFloat32 && tensor.is_contiguous() &&
                      tensor.is_cuda() == collective.device_memory();
  if (direct) {
    return collective.BroadcastFloats(std::span<float>(tensor.data_ptr<float>(), static_cast<size_t>(tensor.numel())), 0);
  }
  // Other dtypes and memory: as bytes through host memory.
  const torch::Tensor host = tensor.to(torch::kCPU).contiguous().clone();
  RETURN_IF_ERROR(collective.Broadcast(
      std::span<uint8_t>(static_cast<uint8_t*>(host.data_ptr()), static_cast<size_t>(host.nbytes())), 0));
  tensor.copy_(host);
  return absl::OkStatus();
}

}  // namespace

std::pair<int64_t, int64_t> ShardOf(int64_t total, int rank, int size) {
  const int64_t base = total / size, extra = total % size;
  const int64_t first = rank * base + std::min<int64_t>(rank, extra);
  return {first, base + (rank < extra ? 1 : 0)};
}

c10::DeviceIndex LocalCudaDevice() {
  const int64_t devices = torch::cuda::is_available() ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
  if (devices == 0) return 0;
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"}) {
    int64_t value = 0;
    if (const char* text = std::getenv(name); text != nullptr && absl::SimpleAtoi(text, &value) && value >= 0) {
      return static_cast<c10::DeviceIndex>(value % devices);
    }
  }
  return 0;
}

absl::Status BroadcastModule(parallel::Collective& collective, torch::nn::Module& module) {
  if (collective.size() == 1) return absl::OkStatus();
  try {
    for (const auto& item : module.named_parameters(/*recurse=*/true)) {
      RETURN_IF_ERROR(BroadcastTensor(collective, item.value()));
    }
    for (const auto& item : module.named_buffers(/*recurse=*/true)) {
      RETURN_IF_ERROR(BroadcastTensor(collective, item.value()));
    }
  } catch (const c10::Error& e) {
    return FromTorch(e, "broadcasting the model");
  }
  return absl::OkStatus();
}

absl::Status AllReduceTensor(parallel::Collective& collective, const torch::Tensor& tensor) {
  if (collective.size() == 1) return absl::OkStatus();
  try {
    torch::NoGradGuard no_grad;
    if (tensor.scalar_type() == torch::kFloat32 && tensor.is_contiguous() &&
        tensor.is_cuda() == collective.device_memory()) {
      return parallel::AllReduceSumBucketed(
          collective, std::span<float>(tensor.data_ptr<float>(), static_cast<size_t>(tensor.numel())));
    }
    const torch::Tensor staged =
        tensor.to(collective.device_memory() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU), torch::kFloat32)
            .contiguous()
            .clone();
    RETURN_IF_ERROR(parallel::AllReduceSumBucketed(
        collective, std::span<float>(staged.data_ptr<float>(), static_cast<size_t>(staged.numel()))));
    tensor.copy_(staged);
  } catch (const c10::Error& e) {
    return FromTorch(e, "all-reduce");
  }
  return absl::OkStatus();
}

// ---- Trainer's data-parallel members (declared in trainer.h) ----

void Trainer::set_collective(parallel::Collective* collective) {
  collective_ = collective;
  // Ranks share the seed (same shuffling); dropout masks must still differ between ranks.
  if (collective_ != nullptr && collective_->rank() > 0) {
    torch::manual_seed(options_.seed() + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(collective_->rank()));
  }
}

bool Trainer::parallel() const { return collective_ != nullptr && collective_->size() > 1; }
bool Trainer::leader() const { return collective_ == nullptr || collective_->rank() == 0; }

absl::Status Trainer::SyncModel() {
  if (!parallel()) return absl::OkStatus();
  return BroadcastModule(*collective_, *model_);
}

absl::StatusOr<std::vector<int64_t>> Trainer::ParallelSample(PoissonSampler& sampler) {
  // Rank 0 draws the site-level Poisson sample (the one a single process would draw) and sends it.
  std::vector<int64_t> indices;
  if (collective_->rank() == 0) indices = sampler.Next();
  uint64_t count = indices.size();
  RETURN_IF_ERROR(collective_->Broadcast(std::span<uint8_t>(reinterpret_cast<uint8_t*>(&count), sizeof(count)), 0));
  indices.resize(count);
  if (count > 0) {
    RETURN_IF_ERROR(collective_->Broadcast(
        std::span<uint8_t>(reinterpret_cast<uint8_t*>(indices.data()), count * sizeof(int64_t)), 0));
  }
  return indices;
}

absl::StatusOr<double> Trainer::ParallelStep(const Batch& data, const torch::Tensor& indices, double lr) {
  parallel::Collective& group = *collective_;
  const int64_t total = indices.numel();
  const auto [first, mine] = ShardOf(total, group.rank(), group.size());
  absl::Status local = absl::OkStatus();
  double loss_sum = 0;
  int64_t clipped = 0;
  const int64_t examples_before = dp_step_ != nullptr ? dp_step_->examples() : 0;
  const int64_t clipped_before = dp_step_ != nullptr ? dp_step_->clipped() : 0;
  try {
    flat_.ZeroGrad();
    if (mine > 0) {
      const Batch batch = SliceBatch(data, indices.narrow(0, first, mine)).to(device_);
      if (dp_step_ != nullptr) {
        // This rank's sum of clipped per-example gradients; noise and division come after the sum.
        absl::StatusOr<double> loss = dp_step_->ClippedSum(*model_, batch, &flat_);
        if (loss.ok()) loss_sum = *loss * static_cast<double>(mine);
        local = loss.status();
        clipped = dp_step_->clipped() - clipped_before;
      } else {
        // The gradient of (1/total) Σ_{own examples} loss: the parts sum to the global mean's.
        const bool autocast = device_.is_cuda() && options_.bf16();
        if (autocast) {
          at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
          at::autocast::set_enabled(true);
        }
        BackwardStep unclipped(0);
        absl::StatusOr<double> loss = unclipped.Compute(*model_, batch, &flat_);
        if (autocast) {
          at::autocast::set_enabled(false);
          at::autocast::clear_cache();
        }
        local = loss.status();
        if (loss.ok()) {
          loss_sum = *loss * static_cast<double>(mine);
          torch::NoGradGuard no_grad;
          flat_.grads().mul_(static_cast<double>(mine) / static_cast<double>(total));
        }
      }
    }
    // Gaussian noise once per step, on rank 0, before the sum (Abadi et al. 2016, Alg. 1, line 9).
    if (local.ok() && dp_step_ != nullptr && group.rank() == 0) local = dp_step_->AddNoise(&flat_);
  } catch (const c10::Error& e) {
    local = FromTorch(e, "training step");
  }
  torch::Tensor stats;
  try {
    if (!local.ok()) flat_.ZeroGrad();
    stats = torch::tensor({local.ok() ? 0.0f : 1.0f, static_cast<float>(loss_sum), static_cast<float>(mine),
                           static_cast<float>(clipped)},
                          torch::kFloat32);
  } catch (const c10::Error& e) {
    return FromTorch(e, "training step");
  }
  RETURN_IF_ERROR(AllReduceTensor(group, flat_.grads()));
  RETURN_IF_ERROR(AllReduceTensor(group, stats));
  const float* s = stats.data_ptr<float>();
  if (s[0] > 0) {
    absl::Status agreed = parallel::AgreeOnStatus(group, local);
    return agreed.ok() ? absl::InternalError("a rank reported a failed step but no error") : agreed;
  }
  const double global_examples = std::round(s[2]);
  const double loss = global_examples > 0 ? s[1] / global_examples : 0.0;
  try {
    torch::NoGradGuard no_grad;
    if (dp_step_ != nullptr) {
      flat_.grads().div_(dp_step_->options().expected_batch_size());
      dp_step_->SetCounters(examples_before + static_cast<int64_t>(global_examples),
                            clipped_before + static_cast<int64_t>(std::round(s[3])));
    } else if (options_.max_grad_norm() > 0) {
      // Global-norm clipping of the whole batch's gradient, as BackwardStep does in one process.
      const double norm = flat_.grads().norm().item<double>();
      if (norm > options_.max_grad_norm()) flat_.grads().mul_(options_.max_grad_norm() / (norm + 1e-6));
    }
    if (!std::isfinite(loss)) return absl::InternalError(absl::StrCat("loss is ", loss, " (diverged)"));
    for (const GradientHook& hook : gradient_hooks_) hook(&flat_);
    optimizer_.Step(lr);
  } catch (const c10::Error& e) {
    return FromTorch(e, "training step");
  }
  return loss;
}

}  // namespace fedattn::models
