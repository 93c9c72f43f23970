// What a model is, without LibTorch: the options a model is built from (loaded from a YAML model
// config) and the list of its named tensors with shapes, dtypes and whether they train. The
// coordinator aggregates flat updates laid out by a ModelSpec without ever linking LibTorch;
// fedattn_models builds modules whose named_parameters() match BuildModelSpec() exactly (same
// names, order and shapes; a test holds them to it).
//
// Options follow the LibTorch convention: each field has a getter `x()` and a chained setter
// `x(value)`, with the default documented beside it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fedattn/tensor/tensor_buffer.h"

namespace fedattn::config {
class MapReader;
}

// Like TORCH_ARG (torch/arg.h), which this header cannot include.
#define FEDATTN_ARG(T, name)                                   \
 public:                                                       \
  inline auto name(const T& new_##name)->decltype(*this) {     \
    this->name##_ = new_##name;                                \
    return *this;                                              \
  }                                                            \
  inline const T& name() const noexcept { return this->name##_; } \
  inline T& name() noexcept { return this->name##_; }          \
                                                               \
 private:                                                      \
  T name##_

namespace fedattn::models {

// LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models", section 4.1):
// W x + (alpha / rank) * B A dropout(x), with A ~ Kaiming-uniform and B = 0 at start.
struct LoraOptions {
  // Valid targets: query, key, value, attention_output, ffn (both feed-forward projections).
  static const std::vector<std::string>& AllTargets();
  absl::Status Validate() const;
  bool Targets(absl::string_view target) const;

  FEDATTN_ARG(int64_t, rank) = 0;  // adapter rank; 0 = no adapters
  FEDATTN_ARG(double, alpha) = 16.0;  // scale numerator: updates are scaled by alpha / rank
  FEDATTN_ARG(double, dropout) = 0.0;  // dropout on the adapter input
  FEDATTN_ARG(std::vector<std::string>, targets) = std::vector<std::string>{"query", "value"};
};

// The Transformer encoder both models share.
struct EncoderOptions {
  absl::Status Validate() const;

  FEDATTN_ARG(int64_t, d_model) = 128;  // width of every token vector
  FEDATTN_ARG(int64_t, num_layers) = 2;
  FEDATTN_ARG(int64_t, num_heads) = 4;  // must divide d_model
  FEDATTN_ARG(int64_t, ffn_dim) = 512;  // feed-forward hidden width
  FEDATTN_ARG(double, dropout) = 0.1;  // on residual branches and embeddings
  FEDATTN_ARG(double, attention_dropout) = 0.1;  // on attention probabilities
  FEDATTN_ARG(bool, norm_first) = false;  // false: post-LayerNorm as BERT; true: pre-LN
  FEDATTN_ARG(double, layer_norm_eps) = 1e-12;  // BERT's value
  FEDATTN_ARG(std::string, activation) = "gelu";  // gelu | relu
};

// BERT-style encoder with [CLS] pooling and a classification head.
struct TextClassifierOptions {
  absl::Status Validate() const;

  FEDATTN_ARG(EncoderOptions, encoder) = EncoderOptions();
  FEDATTN_ARG(int64_t, vocab_size) = 8000;
  FEDATTN_ARG(int64_t, max_positions) = 512;  // longest sequence, [CLS] and [SEP] included
  FEDATTN_ARG(int64_t, type_vocab_size) = 2;  // segment ids
  FEDATTN_ARG(int64_t, num_classes) = 2;
  FEDATTN_ARG(int64_t, pad_token_id) = 0;  // BERT's [PAD]
};

// FT-Transformer (Gorishniy et al. 2021, "Revisiting Deep Learning Models for Tabular Data",
// section 3.3): one token per feature, a [CLS] token, an encoder, a LayerNorm-ReLU-Linear head.
struct TabularTransformerOptions {
  absl::Status Validate() const;
  // Outputs of the head: classes for classification, 1 for regression.
  int64_t num_outputs() const { return regression_ ? 1 : num_classes_; }

  FEDATTN_ARG(EncoderOptions, encoder) = EncoderOptions().d_model(32).num_heads(4).ffn_dim(64)
                                             .norm_first(true).layer_norm_eps(1e-5);
  FEDATTN_ARG(int64_t, num_numeric) = 0;  // numeric features (from the data schema)
  FEDATTN_ARG(std::vector<int64_t>, cardinalities) = std::vector<int64_t>{};  // per categorical feature
  FEDATTN_ARG(bool, regression) = false;  // true: one output trained with MSE
  FEDATTN_ARG(int64_t, num_classes) = 2;  // classification only
};

enum class ModelKind { kTextClassifier, kTabularTransformer };
// Which parameters train (and so which ones a site sends): everything, the LoRA adapters plus
// the head, or the head only.
enum class Trainable { kFull, kLora, kHead };

absl::string_view ModelKindName(ModelKind kind);
absl::string_view TrainableName(Trainable trainable);

// A whole model config (configs/models/*.yaml).
struct ModelOptions {
  // Checks the architecture. Tabular input sizes may still be zero here: they come from the
  // data schema and are checked when the model is built.
  absl::Status Validate() const;

  FEDATTN_ARG(ModelKind, kind) = ModelKind::kTextClassifier;
  FEDATTN_ARG(TextClassifierOptions, text) = TextClassifierOptions();
  FEDATTN_ARG(TabularTransformerOptions, tabular) = TabularTransformerOptions();
  FEDATTN_ARG(LoraOptions, lora) = LoraOptions();
  FEDATTN_ARG(Trainable, trainable) = Trainable::kFull;
  // Hugging Face BERT directory (config.json, model.safetensors, vocab.txt); text only. When set,
  // the architecture comes from config.json and may not be given in YAML.
  FEDATTN_ARG(std::filesystem::path, pretrained) = std::filesystem::path();
};

// Reads the mapping under `model:` of a model config; problems are recorded in the reader's
// document (see config::YamlDocument::Finish).
void ReadModelOptions(config::MapReader& model, ModelOptions* options);
// Loads a model config file and validates it.
[[nodiscard]] absl::StatusOr<ModelOptions> LoadModelOptions(const std::filesystem::path& path);

struct TensorSpec {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  bool trainable = true;
  int64_t numel() const;
};

struct ModelSpec {
  std::vector<TensorSpec> tensors;  // in module registration order
  int64_t NumParameters() const;
  int64_t NumTrainable() const;
  // The trainable tensors in order: the layout of a flat update vector.
  std::vector<TensorSpec> TrainableTensors() const;
};

// The tensors the options build. INVALID_ARGUMENT if the options are invalid (including a
// tabular model without features).
[[nodiscard]] absl::StatusOr<ModelSpec> BuildModelSpec(const ModelOptions& options);

}  // namespace fedattn::models
