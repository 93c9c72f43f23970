// Data-parallel training helpers over a parallel::Collective (fedattn/parallel/collective.h):
// the model broadcast from rank 0, tensor all-reduce, and how a global batch is split.
//
// Scheme (Trainer::set_collective, docs/multi-gpu.md): every rank holds the same training split
// and draws the same global batches (the same shuffling seed; in DP-SGD rank 0 draws the Poisson
// sample and broadcasts it). Each rank computes the gradient of its contiguous part of the
// global batch (ShardOf); the parts' sums are all-reduced, so every rank takes the same
// optimizer step that one process would take on the whole batch, up to float rounding.
#pragma once

#include <cstdint>
#include <utility>

#include <torch/nn/module.h>
#include <torch/types.h>

#include "absl/status/status.h"
#include "fedattn/parallel/collective.h"

namespace fedattn::models {

// Rank `rank`'s part of a batch of `total` examples: [first, first + count), contiguous,
// sizes differing by at most one, rank order.
std::pair<int64_t, int64_t> ShardOf(int64_t total, int rank, int size);

// The CUDA device of this process: its local rank under a launcher (OMPI_COMM_WORLD_LOCAL_RANK,
// MPI_LOCALRANKID, SLURM_LOCALID) modulo the visible devices; 0 otherwise or without CUDA.
c10::DeviceIndex LocalCudaDevice();

// Copies rank 0's parameters and buffers into every rank's `module` (same architecture on all).
[[nodiscard]] absl::Status BroadcastModule(parallel::Collective& collective, torch::nn::Module& module);

// Sums `tensor` (float32, any device) over the ranks in place, in buckets; stages through a copy
// when the tensor is not where the collective wants it (host vs device) or not contiguous.
[[nodiscard]] absl::Status AllReduceTensor(parallel::Collective& collective, const torch::Tensor& tensor);

}  // namespace fedattn::models
