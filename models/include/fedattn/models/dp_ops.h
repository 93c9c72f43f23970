// The parametric operations of the models (transformer.cc), instrumented for DP-SGD.
//
// Outside a DP-SGD step every op here is the plain ATen call. Inside one — while a
// PerExampleTape is current on this thread — an op whose parameters train runs as a custom
// autograd function whose backward computes the input gradient as usual, records each example's
// squared gradient norm for those parameters, and keeps what it needs to add the clipped sum
// Σ_b c_b ∇_b later, instead of letting autograd accumulate the unclipped sum. This is the
// "book-keeping" scheme of Bu et al. 2023 ("Differentially Private Optimization on Large Model
// at Small Cost", §3): one forward and one backward, no loop over examples.
//
// Per-example norms, per op (B examples, T rows each, rows example-major):
//   Linear     ‖G_bᵀA_b‖²: per-example gradients G_bᵀA_b (one bmm) where in·out ≤ T(in+out),
//              else the ghost norm ⟨A_bA_bᵀ, G_bG_bᵀ⟩ (Li et al. 2022, "Large Language Models
//              Can Be Strong Differentially Private Learners", §4); bias ‖Σ_t g_bt‖².
//   LayerNorm  ‖Σ_t g_bt ⊙ x̂_bt‖² and ‖Σ_t g_bt‖² (x̂ recomputed from the saved mean and rstd).
//   Embedding  Σ over the distinct ids of example b of ‖Σ_{t: id_bt = i} g_bt‖².
//   AddParameter / ExpandParameter / FeatureAffine: per-example gradients directly (small).
//
// Contract for a model that trains with DP-SGD: every use of a trainable parameter goes through
// one of these ops; the leading rows of each op's input are grouped by example (example-major,
// the same number of rows per example); each parameter element is used by at most one op per
// forward pass. A model that breaks this is refused (DpSgdStep reports the parameter by name),
// never trained with a wrong norm. Examples must not interact (no batch statistics).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace fedattn::models {

class FlatParameters;

// What one forward + backward pass over a batch of `batch` examples recorded: per-example
// squared gradient norms (summed over parameters) and, per parameter, how to write
// Σ_b scale_b ∇_b into its slot of flat->grads().
//
// Thread safety: ops record during forward on the thread the tape is current on, and during
// backward from autograd's thread for the device (guarded by a mutex). Owned by the caller; it
// must outlive the backward pass of every graph built while it was current.
class PerExampleTape {
 public:
  // REQUIRES: batch >= 1; flat outlives the tape.
  PerExampleTape(int64_t batch, FlatParameters* flat);
  PerExampleTape(const PerExampleTape&) = delete;
  PerExampleTape& operator=(const PerExampleTape&) = delete;

  // Makes `tape` the one the ops on this thread record into, for the scope's lifetime.
  class Scope {
   public:
    explicit Scope(PerExampleTape* tape);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    PerExampleTape* previous_;
  };
  // The tape current on this thread, or null.
  static PerExampleTape* Current();

  int64_t batch() const { return batch_; }

  // --- Used by the ops. ---
  // The slot in flat->grads() of trainable parameter `p` (a parameter or a contiguous slice of
  // one), shaped like p; undefined when p does not require grad. Records an error (and returns
  // undefined) if p lies outside the flat buffer or overlaps a slice claimed earlier in this pass.
  torch::Tensor Claim(const torch::Tensor& p, absl::string_view op);
  void Fail(absl::Status status);
  bool ok() const;
  void AddNormSq(const torch::Tensor& norm_sq);  // [batch], any float dtype
  void Defer(std::function<void(const torch::Tensor& scale)> write);

  // --- Used by DpSgdStep after backward. ---
  absl::Status status() const;
  // Per-example squared gradient norms over every recorded parameter: [batch] float64 (zeros if
  // nothing was recorded).
  torch::Tensor NormSq() const;
  // Adds Σ_b scale[b] ∇_b into flat->grads() for every recorded parameter, then forgets what was
  // recorded. scale: [batch] float32 on the parameters' device.
  void WriteScaledSum(const torch::Tensor& scale);
  // Name of the parameter holding flat element `offset` (for error messages).
  std::string NameAt(int64_t offset) const;

 private:
  int64_t batch_;
  FlatParameters* flat_;
  mutable std::mutex mutex_;
  absl::Status status_;
  torch::Tensor norm_sq_;
  std::vector<std::pair<int64_t, int64_t>> claimed_;  // [begin, end) in flat elements
  std::vector<std::function<void(const torch::Tensor&)>> writes_;
};

namespace ops {

// y = x Wᵀ + b (b may be undefined). x: [..., in], W: [out, in].
torch::Tensor Linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);
// LayerNorm over the last dimension with affine weight and bias.
torch::Tensor LayerNorm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, double eps);
// Rows `ids` ([B, ...] int64) of `weight` ([V, D]).
torch::Tensor Embedding(const torch::Tensor& weight, const torch::Tensor& ids);
// x + p, with p equal to the trailing dimensions of x ([B, ...] example-major) and broadcast over
// the others.
torch::Tensor AddParameter(const torch::Tensor& x, const torch::Tensor& p);
// p repeated `rows` times along a new leading dimension: [rows, p.sizes()...].
torch::Tensor ExpandParameter(const torch::Tensor& p, int64_t rows);
// x[..., None] * weight + bias: x [B, F], weight and bias [F, D] -> [B, F, D] (the
// FT-Transformer's numeric feature tokenizer).
torch::Tensor FeatureAffine(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

}  // namespace ops
}  // namespace fedattn::models
