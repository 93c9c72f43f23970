#include "fedattn/models/transformer.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/models/dp_ops.h"

namespace fedattn::models {
namespace {

const char* const kAttentionTargets[] = {"query", "key", "value"};

// Every use of a parameter goes through dp_ops.h, so DP-SGD can clip per example: y = x W^T + b
// is one addmm outside a DP-SGD step.
using ops::LayerNorm;
using ops::Linear;

torch::Tensor Activation(const torch::Tensor& x, const std::string& name) {
  return name == "relu" ? at::relu(x) : at::gelu(x);
}

// PyTorch's nn.Linear default: Kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(fan_in), ...).
void KaimingUniform(torch::Tensor& weight) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(weight.size(1)));
  weight.uniform_(-bound, bound);
}

}  // namespace

EncoderLayerImpl::EncoderLayerImpl(const EncoderOptions& options_, const LoraOptions& lora_options)
    : options(options_), lora(lora_options) {
  reset();
}

void EncoderLayerImpl::reset() {
  const int64_t d = options.d_model(), f = options.ffn_dim(), r = lora.rank();
  qkv_weight_ = register_parameter("qkv_weight", torch::empty({3 * d, d}));
  qkv_bias_ = register_parameter("qkv_bias", torch::zeros({3 * d}));
  out_weight_ = register_parameter("out_weight", torch::empty({d, d}));
  out_bias_ = register_parameter("out_bias", torch::zeros({d}));
  attention_norm_weight_ = register_parameter("attention_norm_weight", torch::ones({d}));
  attention_norm_bias_ = register_parameter("attention_norm_bias", torch::zeros({d}));
  ffn_in_weight_ = register_parameter("ffn_in_weight", torch::empty({f, d}));
  ffn_in_bias_ = register_parameter("ffn_in_bias", torch::zeros({f}));
  ffn_out_weight_ = register_parameter("ffn_out_weight", torch::empty({d, f}));
  ffn_out_bias_ = register_parameter("ffn_out_bias", torch::zeros({d}));
  ffn_norm_weight_ = register_parameter("ffn_norm_weight", torch::ones({d}));
  ffn_norm_bias_ = register_parameter("ffn_norm_bias", torch::zeros({d}));
  torch::NoGradGuard no_grad;
  for (torch::Tensor* weight : {&qkv_weight_, &out_weight_, &ffn_in_weight_, &ffn_out_weight_}) {
    KaimingUniform(*weight);
  }
  if (r == 0) return;
  auto add = [&](const std::string& target, int64_t in, int64_t out) {
    torch::Tensor a = register_parameter(absl::StrCat("lora_", target, "_a"), torch::empty({r, in}));
    torch::Tensor b = register_parameter(absl::StrCat("lora_", target, "_b"), torch::zeros({out, r}));
    KaimingUniform(a);
    lora_[target] = {a, b};
  };
  for (const char* target : {"query", "key", "value", "attention_output"}) {
    if (lora.Targets(target)) add(target, d, d);
  }
  if (lora.Targets("ffn")) {
    add("ffn_in", d, f);
    add("ffn_out", f, d);
  }
}

torch::Tensor EncoderLayerImpl::Lora(const torch::Tensor& x, absl::string_view target) {
  const auto& [a, b] = lora_.at(std::string(target));
  const torch::Tensor input = lora.dropout() > 0 ? at::dropout(x, lora.dropout(), is_training()) : x;
  return Linear(Linear(input, a, {}), b, {}).mul_(lora.alpha() / static_cast<double>(lora.rank()));
}

torch::Tensor EncoderLayerImpl::Attention(const torch::Tensor& x, int64_t batch, const torch::Tensor& key_bias,
                                          bool cls_only) {
  const int64_t d = options.d_model(), heads = options.num_heads(), head_dim = d / heads;
  const int64_t tokens = x.size(0) / batch, queries = cls_only ? 1 : tokens;
  torch::Tensor q, k, v;
  if (!cls_only) {
    torch::Tensor qkv = Linear(x, qkv_weight_, qkv_bias_);  // [N, 3D]
    for (int64_t i = 0; i < 3; ++i) {
      if (lora.Targets(kAttentionTargets[i])) qkv.narrow(1, i * d, d).add_(Lora(x, kAttentionTargets[i]));
    }
    // [N, 3D] -> [3, B*H, T, Dh] in one copy, then unbind: views, and a backward that is one stack
    // (indexing with select would make three full-size zero-filled gradients instead).
    const std::vector<torch::Tensor> split = qkv.view({batch, tokens, 3, heads, head_dim})
                                                 .permute({2, 0, 3, 1, 4})
                                                 .contiguous()
                                                 .view({3, batch * heads, tokens, head_dim})
                                                 .unbind(0);
    q = split[0];
    k = split[1];
    v = split[2];
  } else {
    // Queries for the first token only; keys and values for all.
    const torch::Tensor first = x.view({batch, tokens, d}).select(1, 0);
    torch::Tensor query = Linear(first, qkv_weight_.narrow(0, 0, d), qkv_bias_.narrow(0, 0, d));
    if (lora.Targets("query")) query = query + Lora(first, "query");
    torch::Tensor kv = Linear(x, qkv_weight_.narrow(0, d, 2 * d), qkv_bias_.narrow(0, d, 2 * d));  // [N, 2D]
    for (int64_t i = 1; i < 3; ++i) {
      if (lora.Targets(kAttentionTargets[i])) kv.narrow(1, (i - 1) * d, d).add_(Lora(x, kAttentionTargets[i]));
    }
    q = query.view({batch * heads, 1, head_dim});
    const std::vector<torch::Tensor> split = kv.view({batch, tokens, 2, heads, head_dim})
                                                 .permute({2, 0, 3, 1, 4})
                                                 .contiguous()
                                                 .view({2, batch * heads, tokens, head_dim})
                                                 .unbind(0);
    k = split[0];
    v = split[1];
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  torch::Tensor scores = key_bias.defined() ? at::baddbmm(key_bias, q, k.transpose(1, 2), 1.0, scale)
                                            : at::bmm(q, k.transpose(1, 2)).mul_(scale);
  torch::Tensor probs = at::softmax(scores, -1);
  if (options.attention_dropout() > 0) probs = at::dropout(probs, options.attention_dropout(), is_training());
  const torch::Tensor context = at::bmm(probs, v)
                                    .view({batch, heads, queries, head_dim})
                                    .permute({0, 2, 1, 3})
                                    .reshape({batch * queries, d});
  torch::Tensor out = Linear(context, out_weight_, out_bias_);
  if (lora.Targets("attention_output")) out = out + Lora(context, "attention_output");
  return out;
}

torch::Tensor EncoderLayerImpl::FeedForward(const torch::Tensor& x) {
  const bool adapters = lora.Targets("ffn");
  torch::Tensor hidden = Linear(x, ffn_in_weight_, ffn_in_bias_);
  if (adapters) hidden = hidden + Lora(x, "ffn_in");
  hidden = Activation(hidden, options.activation());
  torch::Tensor out = Linear(hidden, ffn_out_weight_, ffn_out_bias_);
  if (adapters) out = out + Lora(hidden, "ffn_out");
  return out;
}

torch::Tensor EncoderLayerImpl::forward(const torch::Tensor& x, int64_t batch, const torch::Tensor& key_bias,
                                        bool cls_only) {
  const double p = options.dropout(), eps = options.layer_norm_eps();
  const bool train = is_training();
  // The residual stream: every token, or only each sequence's first.
  const torch::Tensor residual = cls_only ? x.view({batch, x.size(0) / batch, x.size(1)}).select(1, 0) : x;
  if (options.norm_first()) {
    torch::Tensor h = residual + at::dropout(Attention(LayerNorm(x, attention_norm_weight_, attention_norm_bias_, eps),
                                                       batch, key_bias, cls_only),
                                             p, train);
    return h + at::dropout(FeedForward(LayerNorm(h, ffn_norm_weight_, ffn_norm_bias_, eps)), p, train);
  }
  torch::Tensor h = LayerNorm(residual + at::dropout(Attention(x, batch, key_bias, cls_only), p, train),
                              attention_norm_weight_, attention_norm_bias_, eps);
  return LayerNorm(h + at::dropout(FeedForward(h), p, train), ffn_norm_weight_, ffn_norm_bias_, eps);
}

TextClassifierImpl::TextClassifierImpl(ModelOptions options) : ModelImpl(std::move(options)) { reset(); }

void TextClassifierImpl::reset() {
  const TextClassifierOptions& text = options_.text();
  const int64_t d = text.encoder().d_model();
  word_embeddings_ = register_parameter("word_embeddings", torch::empty({text.vocab_size(), d}));
  position_embeddings_ = register_parameter("position_embeddings", torch::empty({text.max_positions(), d}));
  token_type_embeddings_ = register_parameter("token_type_embeddings", torch::empty({text.type_vocab_size(), d}));
  embedding_norm_weight_ = register_parameter("embedding_norm_weight", torch::ones({d}));
  embedding_norm_bias_ = register_parameter("embedding_norm_bias", torch::zeros({d}));
  if (text.encoder().norm_first()) {
    final_norm_weight_ = register_parameter("final_norm_weight", torch::ones({d}));
    final_norm_bias_ = register_parameter("final_norm_bias", torch::zeros({d}));
  }
  pooler_weight_ = register_parameter("pooler_weight", torch::empty({d, d}));
  pooler_bias_ = register_parameter("pooler_bias", torch::zeros({d}));
  classifier_weight_ = register_parameter("classifier_weight", torch::empty({text.num_classes(), d}));
  classifier_bias_ = register_parameter("classifier_bias", torch::zeros({text.num_classes()}));
  layers_ = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < text.encoder().num_layers(); ++i) {
    layers_->push_back(EncoderLayer(text.encoder(), options_.lora()));
  }
  // BERT's initialisation: N(0, 0.02) for every matrix (LoRA A keeps its Kaiming init).
  torch::NoGradGuard no_grad;
  for (auto& param : named_parameters()) {
    const std::string& name = param.key();
    if (param.value().dim() == 2 && name.find("lora_") == std::string::npos) param.value().normal_(0.0, 0.02);
  }
}

torch::Tensor TextClassifierImpl::encode(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                         const torch::Tensor& attention_mask) {
  const int64_t batch = input_ids.size(0), tokens = input_ids.size(1);
  return Encode(input_ids, token_type_ids, attention_mask, false).view({batch, tokens, options_.text().encoder().d_model()});
}

torch::Tensor TextClassifierImpl::Encode(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                         const torch::Tensor& attention_mask, bool cls_only) {
  const TextClassifierOptions& text = options_.text();
  const EncoderOptions& encoder = text.encoder();
  const int64_t batch = input_ids.size(0), tokens = input_ids.size(1), d = encoder.d_model();
  TORCH_CHECK(tokens <= text.max_positions(), "sequence of ", tokens, " tokens exceeds max_positions ",
              text.max_positions());
  torch::Tensor x = ops::AddParameter(ops::Embedding(word_embeddings_, input_ids),
                                      position_embeddings_.narrow(0, 0, tokens));
  x = token_type_ids.defined() ? x + ops::Embedding(token_type_embeddings_, token_type_ids)
                               : ops::AddParameter(x, token_type_embeddings_[0]);
  x = LayerNorm(x, embedding_norm_weight_, embedding_norm_bias_, encoder.layer_norm_eps());
  x = at::dropout(x, encoder.dropout(), is_training()).reshape({batch * tokens, d});
  torch::Tensor key_bias;
  if (attention_mask.defined()) {
    // 0 for real tokens, -inf for padding, one row per (sequence, head), broadcast over queries.
    key_bias = torch::zeros({batch, 1, 1, tokens}, x.options())
                   .masked_fill_(attention_mask.eq(0).view({batch, 1, 1, tokens}), -INFINITY)
                   .expand({batch, encoder.num_heads(), 1, tokens})
                   .reshape({batch * encoder.num_heads(), 1, tokens});
  }
  const size_t count = layers_->size();
  for (size_t i = 0; i < count; ++i) {
    x = layers_[i]->as<EncoderLayer>()->forward(x, batch, key_bias, cls_only && i + 1 == count);
  }
  if (cls_only && count == 0) x = x.view({batch, tokens, d}).select(1, 0);
  if (encoder.norm_first()) x = LayerNorm(x, final_norm_weight_, final_norm_bias_, encoder.layer_norm_eps());
  return x;
}

torch::Tensor TextClassifierImpl::forward(const Batch& batch) {
  // The head reads [CLS] only, so the last layer computes [CLS] only.
  const torch::Tensor cls = Encode(batch.input_ids, batch.token_type_ids, batch.attention_mask, /*cls_only=*/true);
  torch::Tensor pooled = at::tanh(Linear(cls, pooler_weight_, pooler_bias_));
  pooled = at::dropout(pooled, options_.text().encoder().dropout(), is_training());
  return Linear(pooled, classifier_weight_, classifier_bias_);
}

TabularTransformerImpl::TabularTransformerImpl(ModelOptions options) : ModelImpl(std::move(options)) { reset(); }

void TabularTransformerImpl::reset() {
  const TabularTransformerOptions& tabular = options_.tabular();
  const int64_t d = tabular.encoder().d_model(), num_numeric = tabular.num_numeric();
  const int64_t num_categorical = static_cast<int64_t>(tabular.cardinalities().size());
  const double bound = 1.0 / std::sqrt(static_cast<double>(d));
  torch::NoGradGuard no_grad;
  if (num_numeric > 0) {
    numeric_weight_ = register_parameter("numeric_weight", torch::empty({num_numeric, d}).uniform_(-bound, bound));
    numeric_bias_ = register_parameter("numeric_bias", torch::empty({num_numeric, d}).uniform_(-bound, bound));
  }
  if (num_categorical > 0) {
    std::vector<int64_t> offsets;
    int64_t total = 0;
    for (int64_t cardinality : tabular.cardinalities()) {
      offsets.push_back(total);
      total += cardinality;
    }
    category_embeddings_ =
        register_parameter("category_embeddings", torch::empty({total, d}).uniform_(-bound, bound));
    category_bias_ = register_parameter("category_bias", torch::empty({num_categorical, d}).uniform_(-bound, bound));
    category_offsets_ = register_buffer("category_offsets", torch::tensor(offsets, torch::kInt64));
  }
  cls_token_ = register_parameter("cls_token", torch::empty({d}).uniform_(-bound, bound));
  head_norm_weight_ = register_parameter("head_norm_weight", torch::ones({d}));
  head_norm_bias_ = register_parameter("head_norm_bias", torch::zeros({d}));
  head_weight_ = register_parameter("head_weight", torch::empty({tabular.num_outputs(), d}));
  KaimingUniform(head_weight_);
  head_bias_ = register_parameter("head_bias", torch::zeros({tabular.num_outputs()}));
  layers_ = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < tabular.encoder().num_layers(); ++i) {
    layers_->push_back(EncoderLayer(tabular.encoder(), options_.lora()));
  }
}

torch::Tensor TabularTransformerImpl::forward(const Batch& batch) {
  const EncoderOptions& encoder = options_.tabular().encoder();
  const int64_t d = encoder.d_model();
  std::vector<torch::Tensor> parts;
  int64_t rows = 0;
  if (numeric_weight_.defined()) {
    rows = batch.numeric.size(0);
    // x_j * W_j + b_j for every numeric feature j: [B, F, D].
    parts.push_back(ops::FeatureAffine(batch.numeric, numeric_weight_, numeric_bias_));
  }
  if (category_embeddings_.defined()) {
    rows = batch.categorical.size(0);
    parts.push_back(
        ops::AddParameter(ops::Embedding(category_embeddings_, batch.categorical + category_offsets_), category_bias_));
  }
  parts.insert(parts.begin(), ops::ExpandParameter(cls_token_.view({1, d}), rows));
  const int64_t tokens = 1 + options_.tabular().num_numeric() +
                         static_cast<int64_t>(options_.tabular().cardinalities().size());
  torch::Tensor x = at::cat(parts, 1).reshape({rows * tokens, d});
  // Only [CLS] feeds the head: the last layer computes it alone (as the FT-Transformer paper does).
  const size_t count = layers_->size();
  for (size_t i = 0; i < count; ++i) {
    x = layers_[i]->as<EncoderLayer>()->forward(x, rows, torch::Tensor(), i + 1 == count);
  }
  torch::Tensor cls = count == 0 ? x.view({rows, tokens, d}).select(1, 0) : x;
  if (encoder.norm_first()) cls = LayerNorm(cls, head_norm_weight_, head_norm_bias_, encoder.layer_norm_eps());
  return Linear(at::relu(cls), head_weight_, head_bias_);
}

absl::StatusOr<std::shared_ptr<ModelImpl>> BuildModel(const ModelOptions& options, uint64_t seed) {
  ASSIGN_OR_RETURN(ModelSpec spec, BuildModelSpec(options));
  std::shared_ptr<ModelImpl> model;
  try {
    torch::manual_seed(seed);
    if (options.kind() == ModelKind::kTextClassifier) {
      model = std::make_shared<TextClassifierImpl>(options);
    } else {
      model = std::make_shared<TabularTransformerImpl>(options);
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("building ", ModelKindName(options.kind()), ": ", e.what_without_backtrace()));
  }
  auto params = model->named_parameters();
  if (params.size() != spec.tensors.size()) {
    return absl::InternalError(absl::StrCat("model has ", params.size(), " tensors, spec ", spec.tensors.size()));
  }
  for (size_t i = 0; i < params.size(); ++i) {
    const TensorSpec& expected = spec.tensors[i];
    torch::Tensor& param = params[i].value();
    if (params[i].key() != expected.name || param.sizes().vec() != expected.shape) {
      return absl::InternalError(absl::StrCat("model tensor ", i, " '", params[i].key(), "' differs from spec '",
                                              expected.name, "'"));
    }
    param.set_requires_grad(expected.trainable);
  }
  return model;
}

}  // namespace fedattn::models
