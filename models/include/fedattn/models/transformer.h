// The attention models: a BERT-style text classifier and an FT-Transformer for tabular records,
// both on one encoder layer written directly on ATen ops (fused QKV projection, addmm,
// baddbmm + softmax), with optional LoRA adapters.
//
// Parameter names, order and shapes are exactly those of BuildModelSpec() (model_spec.h), and
// requires_grad follows ModelOptions::trainable. Modules are not thread-safe.
#pragma once

#include <memory>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include "absl/status/statusor.h"
#include "fedattn/models/batch.h"
#include "fedattn/models/model_spec.h"

namespace fedattn::models {

// One Transformer encoder layer. Input and output are [N, D] rows (N = batch * tokens) so the
// projections are single addmm calls.
class EncoderLayerImpl : public torch::nn::Module {
 public:
  EncoderLayerImpl(const EncoderOptions& options, const LoraOptions& lora);
  void reset();
  // x: [batch * tokens, D]; key_bias: [batch * heads, 1, tokens] additive (0 or -inf for
  // padding), or undefined when every token is real. Returns [batch * tokens, D], or with
  // cls_only the first token of each sequence only, [batch, D]: what a last layer feeding a
  // [CLS] head needs (keys and values still come from every token), for a fraction of the work.
  torch::Tensor forward(const torch::Tensor& x, int64_t batch, const torch::Tensor& key_bias, bool cls_only = false);

  EncoderOptions options;
  LoraOptions lora;

 private:
  torch::Tensor Attention(const torch::Tensor& x, int64_t batch, const torch::Tensor& key_bias, bool cls_only);
  torch::Tensor FeedForward(const torch::Tensor& x);
  torch::Tensor Lora(const torch::Tensor& x, absl::string_view target);

  torch::Tensor qkv_weight_, qkv_bias_, out_weight_, out_bias_, attention_norm_weight_, attention_norm_bias_;
  torch::Tensor ffn_in_weight_, ffn_in_bias_, ffn_out_weight_, ffn_out_bias_, ffn_norm_weight_, ffn_norm_bias_;
  std::map<std::string, std::pair<torch::Tensor, torch::Tensor>> lora_;  // target -> (A, B)
};
TORCH_MODULE(EncoderLayer);

// Base of both models: forward(batch) returns logits [B, num_outputs] (classes, or 1 for
// regression).
class ModelImpl : public torch::nn::Module {
 public:
  explicit ModelImpl(ModelOptions options) : options_(std::move(options)) {}
  virtual torch::Tensor forward(const Batch& batch) = 0;
  const ModelOptions& options() const { return options_; }
  bool regression() const {
    return options_.kind() == ModelKind::kTabularTransformer && options_.tabular().regression();
  }

 protected:
  ModelOptions options_;
};

class TextClassifierImpl : public ModelImpl {
 public:
  explicit TextClassifierImpl(ModelOptions options);
  void reset();
  torch::Tensor forward(const Batch& batch) override;
  // Final hidden states [B, T, D] (after the final LayerNorm for pre-LN models).
  torch::Tensor encode(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                       const torch::Tensor& attention_mask);

 private:
  // Hidden states [B*T, D], or [B, D] for [CLS] only.
  torch::Tensor Encode(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                       const torch::Tensor& attention_mask, bool cls_only);

  torch::Tensor word_embeddings_, position_embeddings_, token_type_embeddings_;
  torch::Tensor embedding_norm_weight_, embedding_norm_bias_, final_norm_weight_, final_norm_bias_;
  torch::Tensor pooler_weight_, pooler_bias_, classifier_weight_, classifier_bias_;
  torch::nn::ModuleList layers_;
};
TORCH_MODULE(TextClassifier);

class TabularTransformerImpl : public ModelImpl {
 public:
  explicit TabularTransformerImpl(ModelOptions options);
  void reset();
  torch::Tensor forward(const Batch& batch) override;

 private:
  torch::Tensor numeric_weight_, numeric_bias_, category_embeddings_, category_bias_, category_offsets_;
  torch::Tensor cls_token_, head_norm_weight_, head_norm_bias_, head_weight_, head_bias_;
  torch::nn::ModuleList layers_;
};
TORCH_MODULE(TabularTransformer);

// Builds the model the options describe, initialised from `seed`, with requires_grad set by
// options.trainable(). INVALID_ARGUMENT for invalid options.
[[nodiscard]] absl::StatusOr<std::shared_ptr<ModelImpl>> BuildModel(const ModelOptions& options, uint64_t seed);

}  // namespace fedattn::models
