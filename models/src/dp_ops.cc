#include "fedattn/models/dp_ops.h"

#include <cstdint>

#include <torch/autograd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fedattn/models/trainer.h"

namespace fedattn::models {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

thread_local PerExampleTape* current_tape = nullptr;

std::string Shape(const Tensor& t) { return absl::StrCat("[", absl::StrJoin(t.sizes(), ", "), "]"); }

int64_t TapeId(PerExampleTape* tape) { return static_cast<int64_t>(reinterpret_cast<intptr_t>(tape)); }
PerExampleTape* TapeOf(AutogradContext* ctx) {
  return reinterpret_cast<PerExampleTape*>(static_cast<intptr_t>(ctx->saved_data["tape"].toInt()));
}

// Squared L2 norm of each example's slice of t ([B, ...]): [B].
Tensor RowNormSq(const Tensor& t) {
  return at::linalg_vector_norm(t.reshape({t.size(0), -1}), 2, at::IntArrayRef{1}).square();
}

// Records per-example gradients pe ([B, ...], laid out like the parameter after the first
// dimension): their squared norms now, Σ_b scale_b pe_b into `slot` later.
void RecordPerExample(PerExampleTape* tape, const Tensor& pe, const Tensor& slot) {
  tape->AddNormSq(RowNormSq(pe));
  tape->Defer([pe, slot](const Tensor& scale) {
    slot.view({-1}).addmv_(pe.reshape({pe.size(0), -1}).t(), scale);
  });
}

// True when a tape is recording and at least one of `params` trains.
bool Recording(PerExampleTape* tape, std::initializer_list<const Tensor*> params) {
  if (tape == nullptr || !torch::GradMode::is_enabled()) return false;
  for (const Tensor* p : params) {
    if (p->defined() && p->requires_grad()) return true;
  }
  return false;
}

// False (and the tape fails) unless `rows` leading rows split evenly into the tape's examples.
bool RowsMatch(PerExampleTape* tape, int64_t rows, const Tensor& p, absl::string_view op) {
  if (rows % tape->batch() == 0) return true;
  tape->Fail(absl::FailedPreconditionError(absl::StrCat(
      op, " on parameter of shape ", Shape(p), ": ", rows, " input rows do not split into ", tape->batch(),
      " examples; DP-SGD needs example-major inputs")));
  return false;
}

// Function::apply cannot take undefined tensors (it records each input's device): optional ones
// travel as c10::optional and their slots in saved_data.
using Optional = c10::optional<Tensor>;

Optional Opt(const Tensor& t) { return t.defined() ? Optional(t) : c10::nullopt; }

void SaveTapeAndSlots(AutogradContext* ctx, int64_t tape, const Optional& weight_slot, const Optional& bias_slot) {
  ctx->saved_data["tape"] = tape;
  if (weight_slot) ctx->saved_data["weight_slot"] = *weight_slot;
  if (bias_slot) ctx->saved_data["bias_slot"] = *bias_slot;
}

Tensor Slot(AutogradContext* ctx, const std::string& name) {
  const auto it = ctx->saved_data.find(name);
  return it == ctx->saved_data.end() ? Tensor() : it->second.toTensor();
}

Tensor PlainLinear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (x.dim() == 2) return bias.defined() ? at::addmm(bias, x, weight.t()) : at::mm(x, weight.t());
  return at::linear(x, weight, bias);
}

struct LinearFn : public torch::autograd::Function<LinearFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& weight, const Optional& bias, int64_t tape,
                        const Optional& weight_slot, const Optional& bias_slot) {
    ctx->save_for_backward({x, weight});
    SaveTapeAndSlots(ctx, tape, weight_slot, bias_slot);
    return PlainLinear(x, weight, bias.value_or(Tensor()));
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const Tensor& x = saved[0];
    const Tensor& weight = saved[1];
    const int64_t in = weight.size(1), out = weight.size(0);
    const Tensor g = grads[0].reshape({-1, out});
    Tensor grad_x;
    if (ctx->needs_input_grad(0)) grad_x = at::mm(g, weight).view(x.sizes());
    PerExampleTape* tape = TapeOf(ctx);
    const Tensor weight_slot = Slot(ctx, "weight_slot");
    const Tensor bias_slot = Slot(ctx, "bias_slot");
    const int64_t batch = tape->batch(), tokens = g.size(0) / batch;
    const Tensor g3 = g.view({batch, tokens, out});
    if (weight_slot.defined()) {
      const Tensor x2 = x.reshape({-1, in});
      if (tokens > 1 && in * out <= tokens * (in + out)) {
        // Per-example gradients are no larger than the activations and output gradients a ghost
        // norm would keep, and cost what the weight gradient costs: materialise them.
        RecordPerExample(tape, at::bmm(g3.transpose(1, 2), x2.view({batch, tokens, in})), weight_slot);
      } else {
        Tensor norm_sq;
        if (tokens == 1) {
          norm_sq = RowNormSq(x2) * RowNormSq(g);  // ‖g aᵀ‖ = ‖g‖‖a‖
        } else {
          const Tensor x3 = x2.view({batch, tokens, in});
          norm_sq = (at::bmm(x3, x3.transpose(1, 2)) * at::bmm(g3, g3.transpose(1, 2))).sum({1, 2});
        }
        tape->AddNormSq(norm_sq);
        tape->Defer([x2, g3, weight_slot, out](const Tensor& scale) {
          weight_slot.addmm_((g3 * scale.view({-1, 1, 1})).view({-1, out}).t(), x2);
        });
      }
    }
    if (bias_slot.defined()) RecordPerExample(tape, g3.sum(1), bias_slot);
    return {grad_x, Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

struct LayerNormFn : public torch::autograd::Function<LayerNormFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Optional& weight, const Optional& bias, double eps,
                        int64_t tape, const Optional& weight_slot, const Optional& bias_slot) {
    auto [y, mean, rstd] = at::native_layer_norm(x, {x.size(-1)}, weight, bias, eps);
    ctx->save_for_backward({x, weight.value_or(Tensor()), bias.value_or(Tensor()), mean, rstd});
    SaveTapeAndSlots(ctx, tape, weight_slot, bias_slot);
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const Tensor &x = saved[0], &weight = saved[1], &bias = saved[2], &mean = saved[3], &rstd = saved[4];
    const Tensor& g = grads[0];
    const int64_t d = x.size(-1);
    Tensor grad_x;
    if (ctx->needs_input_grad(0)) {
      grad_x = std::get<0>(at::native_layer_norm_backward(g, x, {d}, mean, rstd, weight, bias, {true, false, false}));
    }
    PerExampleTape* tape = TapeOf(ctx);
    const int64_t batch = tape->batch();
    const Tensor weight_slot = Slot(ctx, "weight_slot");
    const Tensor bias_slot = Slot(ctx, "bias_slot");
    if (weight_slot.defined()) {
      const Tensor normalized = (x - mean) * rstd;
      RecordPerExample(tape, (g * normalized).reshape({batch, -1, d}).sum(1), weight_slot);
    }
    if (bias_slot.defined()) RecordPerExample(tape, g.reshape({batch, -1, d}).sum(1), bias_slot);
    return {grad_x, Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

struct EmbeddingFn : public torch::autograd::Function<EmbeddingFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& weight, const Tensor& ids, int64_t tape, const Tensor& slot) {
    ctx->saved_data["tape"] = tape;
    ctx->saved_data["ids"] = ids;
    ctx->saved_data["slot"] = slot;
    return at::embedding(weight, ids);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    PerExampleTape* tape = TapeOf(ctx);
    const Tensor ids = ctx->saved_data["ids"].toTensor().reshape({-1});
    const Tensor slot = ctx->saved_data["slot"].toTensor();
    const int64_t vocab = slot.size(0), d = slot.size(1), batch = tape->batch();
    const Tensor g = grads[0].reshape({-1, d});
    // Example b's gradient has one row per distinct id it uses: sum the rows of each (example, id)
    // pair once, then their norms are the example's.
    const Tensor keys = at::arange(batch, ids.options()).repeat_interleave(ids.size(0) / batch) * vocab + ids;
    const auto uniq = at::_unique2(keys, /*sorted=*/true, /*return_inverse=*/true);
    const Tensor& unique = std::get<0>(uniq);
    const Tensor& inverse = std::get<1>(uniq);
    const Tensor rows = at::zeros({unique.size(0), d}, g.options()).index_add_(0, inverse, g);
    const Tensor example = at::div(unique, vocab, "floor");
    tape->AddNormSq(at::zeros({batch}, rows.options()).index_add_(0, example, RowNormSq(rows)));
    tape->Defer([rows, example, unique, vocab, slot](const Tensor& scale) {
      slot.index_add_(0, unique.remainder(vocab), rows * scale.index_select(0, example).unsqueeze(1));
    });
    return {Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

struct AddParameterFn : public torch::autograd::Function<AddParameterFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& p, int64_t tape, const Tensor& slot) {
    ctx->saved_data["tape"] = tape;
    ctx->saved_data["slot"] = slot;
    return x + p;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    PerExampleTape* tape = TapeOf(ctx);
    const Tensor slot = ctx->saved_data["slot"].toTensor();
    const Tensor& g = grads[0];
    RecordPerExample(tape, g.reshape({tape->batch(), -1, slot.numel()}).sum(1), slot);
    return {ctx->needs_input_grad(0) ? g : Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

struct FeatureAffineFn : public torch::autograd::Function<FeatureAffineFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t tape,
                        const Optional& weight_slot, const Optional& bias_slot) {
    ctx->save_for_backward({x, weight});
    SaveTapeAndSlots(ctx, tape, weight_slot, bias_slot);
    return at::addcmul(bias, x.unsqueeze(-1), weight);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const Tensor &x = saved[0], &weight = saved[1];
    const Tensor& g = grads[0];  // [B, F, D]
    PerExampleTape* tape = TapeOf(ctx);
    const Tensor weight_slot = Slot(ctx, "weight_slot");
    const Tensor bias_slot = Slot(ctx, "bias_slot");
    if (weight_slot.defined()) RecordPerExample(tape, g * x.unsqueeze(-1), weight_slot);
    if (bias_slot.defined()) RecordPerExample(tape, g, bias_slot);
    Tensor grad_x;
    if (ctx->needs_input_grad(0)) grad_x = (g * weight).sum(-1);
    return {grad_x, Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

}  // namespace

PerExampleTape::PerExampleTape(int64_t batch, FlatParameters* flat) : batch_(batch), flat_(flat) {}

PerExampleTape::Scope::Scope(PerExampleTape* tape) : previous_(current_tape) { current_tape = tape; }
PerExampleTape::Scope::~Scope() { current_tape = previous_; }
PerExampleTape* PerExampleTape::Current() { return current_tape; }

torch::Tensor PerExampleTape::Claim(const torch::Tensor& p, absl::string_view op) {
  if (!p.defined() || !p.requires_grad()) return Tensor();
  const Tensor& params = flat_->params();
  if (!p.is_contiguous() || p.scalar_type() != torch::kFloat32 || p.device() != params.device() ||
      !p.storage().is_alias_of(params.storage())) {
    Fail(absl::FailedPreconditionError(absl::StrCat(op, ": a trainable tensor of shape ", Shape(p),
                                                    " is not a contiguous slice of the flat parameters")));
    return Tensor();
  }
  const int64_t begin = p.data_ptr<float>() - params.data_ptr<float>(), end = begin + p.numel();
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [b, e] : claimed_) {
    if (begin < e && b < end) {
      status_.Update(absl::FailedPreconditionError(absl::StrCat(
          "parameter '", NameAt(begin), "' is used by more than one operation in one forward pass (again in ", op,
          "); DP-SGD's per-example gradient norms need each parameter used once")));
      return Tensor();
    }
  }
  claimed_.emplace_back(begin, end);
  return flat_->grads().narrow(0, begin, p.numel()).view(p.sizes());
}

void PerExampleTape::Fail(absl::Status status) {
  std::lock_guard<std::mutex> lock(mutex_);
  status_.Update(std::move(status));
}

bool PerExampleTape::ok() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return status_.ok();
}

absl::Status PerExampleTape::status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return status_;
}

void PerExampleTape::AddNormSq(const torch::Tensor& norm_sq) {
  const Tensor value = norm_sq.to(torch::kFloat64);
  std::lock_guard<std::mutex> lock(mutex_);
  if (norm_sq_.defined()) {
    norm_sq_.add_(value);
  } else {
    norm_sq_ = value.clone();
  }
}

void PerExampleTape::Defer(std::function<void(const torch::Tensor& scale)> write) {
  std::lock_guard<std::mutex> lock(mutex_);
  writes_.push_back(std::move(write));
}

torch::Tensor PerExampleTape::NormSq() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (norm_sq_.defined()) return norm_sq_;
  return torch::zeros({batch_}, flat_->params().options().dtype(torch::kFloat64));
}

void PerExampleTape::WriteScaledSum(const torch::Tensor& scale) {
  std::vector<std::function<void(const Tensor&)>> writes;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    writes.swap(writes_);
  }
  torch::NoGradGuard no_grad;
  for (const auto& write : writes) write(scale);
}

std::string PerExampleTape::NameAt(int64_t offset) const {
  int64_t begin = 0;
  for (const TensorSpec& spec : flat_->layout()) {
    const int64_t end = begin + spec.numel();
    if (offset >= begin && offset < end) return spec.name;
    begin = end;
  }
  return absl::StrCat("<flat element ", offset, ">");
}

namespace ops {

torch::Tensor Linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  PerExampleTape* tape = PerExampleTape::Current();
  if (!Recording(tape, {&weight, &bias})) return PlainLinear(x, weight, bias);
  const int64_t rows = x.numel() / std::max<int64_t>(weight.size(1), 1);
  const Tensor weight_slot = tape->Claim(weight, "Linear");
  const Tensor bias_slot = tape->Claim(bias, "Linear");
  if (!RowsMatch(tape, rows, weight, "Linear") || !tape->ok()) return PlainLinear(x, weight, bias);
  return LinearFn::apply(x, weight, Opt(bias), TapeId(tape), Opt(weight_slot), Opt(bias_slot));
}

torch::Tensor LayerNorm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, double eps) {
  PerExampleTape* tape = PerExampleTape::Current();
  if (!Recording(tape, {&weight, &bias})) return at::layer_norm(x, {x.size(-1)}, weight, bias, eps);
  const Tensor weight_slot = tape->Claim(weight, "LayerNorm");
  const Tensor bias_slot = tape->Claim(bias, "LayerNorm");
  if (!RowsMatch(tape, x.numel() / x.size(-1), weight, "LayerNorm") || !tape->ok()) {
    return at::layer_norm(x, {x.size(-1)}, weight, bias, eps);
  }
  return LayerNormFn::apply(x, Opt(weight), Opt(bias), eps, TapeId(tape), Opt(weight_slot), Opt(bias_slot));
}

torch::Tensor Embedding(const torch::Tensor& weight, const torch::Tensor& ids) {
  PerExampleTape* tape = PerExampleTape::Current();
  if (!Recording(tape, {&weight})) return at::embedding(weight, ids);
  const Tensor slot = tape->Claim(weight, "Embedding");
  if (!RowsMatch(tape, ids.numel(), weight, "Embedding") || !tape->ok()) return at::embedding(weight, ids);
  return EmbeddingFn::apply(weight, ids, TapeId(tape), slot);
}

torch::Tensor AddParameter(const torch::Tensor& x, const torch::Tensor& p) {
  PerExampleTape* tape = PerExampleTape::Current();
  if (!Recording(tape, {&p})) return x + p;
  const Tensor slot = tape->Claim(p, "AddParameter");
  const bool trailing = x.dim() > p.dim() && x.sizes().slice(x.dim() - p.dim()).equals(p.sizes());
  if (!trailing) {
    tape->Fail(absl::FailedPreconditionError(absl::StrCat("AddParameter: parameter of shape ", Shape(p),
                                                          " is not the trailing shape of its input ", Shape(x))));
  }
  if (!trailing || !RowsMatch(tape, x.size(0), p, "AddParameter") || !tape->ok()) return x + p;
  return AddParameterFn::apply(x, p, TapeId(tape), slot);
}

torch::Tensor ExpandParameter(const torch::Tensor& p, int64_t rows) {
  std::vector<int64_t> shape = p.sizes().vec();
  shape.insert(shape.begin(), rows);
  PerExampleTape* tape = PerExampleTape::Current();
  if (!Recording(tape, {&p})) return p.unsqueeze(0).expand(shape);
  return AddParameter(torch::zeros(shape, p.options().requires_grad(false)), p);
}

torch::Tensor FeatureAffine(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  PerExampleTape* tape = PerExampleTape::Current();
  if (!Recording(tape, {&weight, &bias})) return at::addcmul(bias, x.unsqueeze(-1), weight);
  const Tensor weight_slot = tape->Claim(weight, "FeatureAffine");
  const Tensor bias_slot = tape->Claim(bias, "FeatureAffine");
  if (x.dim() != 2 || x.size(0) != tape->batch()) {
    tape->Fail(absl::FailedPreconditionError(absl::StrCat("FeatureAffine: input ", Shape(x), " is not [",
                                                          tape->batch(), ", features]")));
  }
  if (!tape->ok()) return at::addcmul(bias, x.unsqueeze(-1), weight);
  return FeatureAffineFn::apply(x, weight, bias, TapeId(tape), Opt(weight_slot), Opt(bias_slot));
}

}  // namespace ops
}  // namespace fedattn::models
