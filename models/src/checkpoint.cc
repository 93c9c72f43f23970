#include "fedattn/models/checkpoint.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fedattn/common/files.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/models/torch_bridge.h"
#include "nlohmann/json.hpp"
#include "status_util.h"

namespace fedattn::models {
namespace {

// Concatenates float buffers along dimension 0 (same trailing shape).
TensorBuffer Concat(std::string name, const std::vector<const TensorBuffer*>& parts) {
  TensorBuffer out;
  out.name = std::move(name);
  out.dtype = parts[0]->dtype;
  out.shape = parts[0]->shape;
  out.shape[0] = 0;
  for (const TensorBuffer* part : parts) {
    out.shape[0] += part->shape[0];
    out.data.insert(out.data.end(), part->data.begin(), part->data.end());
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<TensorBuffer>> ModuleTensors(torch::nn::Module& module, bool trainable_only) {
  std::vector<TensorBuffer> out;
  for (const auto& item : module.named_parameters()) {
    if (trainable_only && !item.value().requires_grad()) continue;
    ASSIGN_OR_RETURN(TensorBuffer buffer, ToBuffer(item.key(), item.value()));
    out.push_back(std::move(buffer));
  }
  return out;
}

absl::Status LoadModuleTensors(torch::nn::Module& module, const std::vector<TensorBuffer>& tensors, bool require_all) {
  auto params = module.named_parameters();
  std::set<std::string> seen;
  try {
    torch::NoGradGuard no_grad;
    for (const TensorBuffer& buffer : tensors) {
      torch::Tensor* param = params.find(buffer.name);
      if (param == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("tensor '", buffer.name, "' is not a parameter of the model"));
      }
      if (param->sizes().vec() != buffer.shape) {
        return absl::InvalidArgumentError(absl::StrCat("tensor '", buffer.name, "' has shape [",
                                                       absl::StrJoin(buffer.shape, ", "), "], the model expects [",
                                                       absl::StrJoin(param->sizes().vec(), ", "), "]"));
      }
      auto value = FromBuffer(buffer);
      if (!value.ok()) return Prefixed(value.status(), absl::StrCat("tensor '", buffer.name, "'"));
      param->copy_(*value);
      seen.insert(buffer.name);
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("loading tensors: ", e.what_without_backtrace()));
  }
  if (require_all) {
    for (const auto& item : params) {
      if (!seen.count(item.key())) {
        return absl::InvalidArgumentError(absl::StrCat("tensor '", item.key(), "' is missing"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status SaveModel(ModelImpl& model, const std::filesystem::path& path, std::map<std::string, std::string> metadata) {
  ASSIGN_OR_RETURN(std::vector<TensorBuffer> tensors, ModuleTensors(model));
  metadata["fedattn.model_kind"] = std::string(ModelKindName(model.options().kind()));
  metadata["format"] = "pt";  // what Hugging Face tools expect of a PyTorch safetensors file
  return SaveSafetensors(path, tensors, metadata);
}

absl::Status LoadModel(ModelImpl& model, const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(SafetensorsFile file, LoadSafetensors(path));
  return Prefixed(LoadModuleTensors(model, file.tensors), path.string());
}

absl::Status ReadBertConfig(const std::filesystem::path& path, TextClassifierOptions* options) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  const nlohmann::json config = nlohmann::json::parse(text, nullptr, false);
  if (config.is_discarded() || !config.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": not a JSON object"));
  }
  auto integer = [&](const char* key, int64_t* out, bool required) -> absl::Status {
    if (!config.contains(key)) {
      return required ? absl::InvalidArgumentError(absl::StrCat(path.string(), ": missing \"", key, "\""))
                      : absl::OkStatus();
    }
    if (!config[key].is_number_integer()) {
      return absl::InvalidArgumentError(absl::StrCat(path.string(), ": \"", key, "\" is not an integer"));
    }
    *out = config[key].get<int64_t>();
    return absl::OkStatus();
  };
  EncoderOptions& encoder = options->encoder();
  RETURN_IF_ERROR(integer("vocab_size", &options->vocab_size(), true));
  RETURN_IF_ERROR(integer("hidden_size", &encoder.d_model(), true));
  RETURN_IF_ERROR(integer("num_hidden_layers", &encoder.num_layers(), true));
  RETURN_IF_ERROR(integer("num_attention_heads", &encoder.num_heads(), true));
  RETURN_IF_ERROR(integer("intermediate_size", &encoder.ffn_dim(), true));
  RETURN_IF_ERROR(integer("max_position_embeddings", &options->max_positions(), false));
  RETURN_IF_ERROR(integer("type_vocab_size", &options->type_vocab_size(), false));
  RETURN_IF_ERROR(integer("pad_token_id", &options->pad_token_id(), false));
  if (config.contains("num_labels") && config["num_labels"].is_number_integer()) {
    options->num_classes(config["num_labels"].get<int64_t>());
  } else if (config.contains("id2label") && config["id2label"].is_object() && config["id2label"].size() >= 2) {
    options->num_classes(static_cast<int64_t>(config["id2label"].size()));
  }
  if (config.contains("layer_norm_eps") && config["layer_norm_eps"].is_number()) {
    encoder.layer_norm_eps(config["layer_norm_eps"].get<double>());
  }
  if (config.contains("hidden_dropout_prob") && config["hidden_dropout_prob"].is_number()) {
    encoder.dropout(config["hidden_dropout_prob"].get<double>());
  }
  if (config.contains("attention_probs_dropout_prob") && config["attention_probs_dropout_prob"].is_number()) {
    encoder.attention_dropout(config["attention_probs_dropout_prob"].get<double>());
  }
  const std::string act = config.value("hidden_act", std::string("gelu"));
  if (act != "gelu" && act != "relu") {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": hidden_act '", act, "' is not supported (gelu, relu)"));
  }
  encoder.activation(act).norm_first(false);
  return Prefixed(options->Validate(), path.string());
}

absl::StatusOr<std::vector<TensorBuffer>> MapBertTensors(const SafetensorsFile& checkpoint,
                                                         const TextClassifierOptions& options,
                                                         absl::string_view source) {
  std::map<std::string, const TensorBuffer*> by_name;
  for (const TensorBuffer& tensor : checkpoint.tensors) {
    std::string name = tensor.name;
    if (absl::StartsWith(name, "bert.")) name = name.substr(5);
    // Old TensorFlow-converted checkpoints call LayerNorm's weight and bias gamma and beta.
    if (absl::EndsWith(name, "LayerNorm.gamma")) name.replace(name.size() - 5, 5, "weight");
    if (absl::EndsWith(name, "LayerNorm.beta")) name.replace(name.size() - 4, 4, "bias");
    by_name[name] = &tensor;
  }
  const int64_t d = options.encoder().d_model(), f = options.encoder().ffn_dim();
  std::vector<TensorBuffer> out;
  auto get = [&](const std::string& hf, std::vector<int64_t> shape, bool required) -> absl::StatusOr<const TensorBuffer*> {
    auto it = by_name.find(hf);
    if (it == by_name.end()) {
      if (!required) return nullptr;
      return absl::InvalidArgumentError(absl::StrCat(source, ": missing tensor '", hf, "'"));
    }
    if (it->second->shape != shape || it->second->dtype != DType::kF32) {
      if (!required) return nullptr;
      return absl::InvalidArgumentError(absl::StrCat(source, ": tensor '", it->second->name, "' is ",
                                                     DTypeName(it->second->dtype), " [",
                                                     absl::StrJoin(it->second->shape, ", "), "], expected F32 [",
                                                     absl::StrJoin(shape, ", "), "]"));
    }
    return it->second;
  };
  auto copy = [&](const std::string& ours, const std::string& hf, std::vector<int64_t> shape,
                  bool required = true) -> absl::Status {
    ASSIGN_OR_RETURN(const TensorBuffer* tensor, get(hf, shape, required));
    if (tensor == nullptr) return absl::OkStatus();
    TensorBuffer renamed = *tensor;
    renamed.name = ours;
    out.push_back(std::move(renamed));
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(copy("word_embeddings", "embeddings.word_embeddings.weight", {options.vocab_size(), d}));
  RETURN_IF_ERROR(copy("position_embeddings", "embeddings.position_embeddings.weight", {options.max_positions(), d}));
  RETURN_IF_ERROR(copy("token_type_embeddings", "embeddings.token_type_embeddings.weight", {options.type_vocab_size(), d}));
  RETURN_IF_ERROR(copy("embedding_norm_weight", "embeddings.LayerNorm.weight", {d}));
  RETURN_IF_ERROR(copy("embedding_norm_bias", "embeddings.LayerNorm.bias", {d}));
  RETURN_IF_ERROR(copy("pooler_weight", "pooler.dense.weight", {d, d}, false));
  RETURN_IF_ERROR(copy("pooler_bias", "pooler.dense.bias", {d}, false));
  RETURN_IF_ERROR(copy("classifier_weight", "classifier.weight", {options.num_classes(), d}, false));
  RETURN_IF_ERROR(copy("classifier_bias", "classifier.bias", {options.num_classes()}, false));
  for (int64_t i = 0; i < options.encoder().num_layers(); ++i) {
    const std::string hf = absl::StrCat("encoder.layer.", i, ".");
    const std::string ours = absl::StrCat("layers.", i, ".");
    std::vector<const TensorBuffer*> weights, biases;
    for (const char* part : {"query", "key", "value"}) {
      ASSIGN_OR_RETURN(const TensorBuffer* w, get(absl::StrCat(hf, "attention.self.", part, ".weight"), {d, d}, true));
      ASSIGN_OR_RETURN(const TensorBuffer* b, get(absl::StrCat(hf, "attention.self.", part, ".bias"), {d}, true));
      weights.push_back(w);
      biases.push_back(b);
    }
    out.push_back(Concat(ours + "qkv_weight", weights));
    out.push_back(Concat(ours + "qkv_bias", biases));
    RETURN_IF_ERROR(copy(ours + "out_weight", hf + "attention.output.dense.weight", {d, d}));
    RETURN_IF_ERROR(copy(ours + "out_bias", hf + "attention.output.dense.bias", {d}));
    RETURN_IF_ERROR(copy(ours + "attention_norm_weight", hf + "attention.output.LayerNorm.weight", {d}));
    RETURN_IF_ERROR(copy(ours + "attention_norm_bias", hf + "attention.output.LayerNorm.bias", {d}));
    RETURN_IF_ERROR(copy(ours + "ffn_in_weight", hf + "intermediate.dense.weight", {f, d}));
    RETURN_IF_ERROR(copy(ours + "ffn_in_bias", hf + "intermediate.dense.bias", {f}));
    RETURN_IF_ERROR(copy(ours + "ffn_out_weight", hf + "output.dense.weight", {d, f}));
    RETURN_IF_ERROR(copy(ours + "ffn_out_bias", hf + "output.dense.bias", {d}));
    RETURN_IF_ERROR(copy(ours + "ffn_norm_weight", hf + "output.LayerNorm.weight", {d}));
    RETURN_IF_ERROR(copy(ours + "ffn_norm_bias", hf + "output.LayerNorm.bias", {d}));
  }
  return out;
}

absl::StatusOr<std::shared_ptr<ModelImpl>> ImportBert(ModelOptions options, uint64_t seed) {
  const std::filesystem::path dir = options.pretrained();
  if (options.kind() != ModelKind::kTextClassifier || dir.empty()) {
    return absl::InvalidArgumentError("ImportBert needs a text_classifier with `pretrained` set");
  }
  const int64_t num_classes = options.text().num_classes();
  RETURN_IF_ERROR(ReadBertConfig(dir / "config.json", &options.text()));
  options.text().num_classes(num_classes);  // the task's classes, not the checkpoint's
  ASSIGN_OR_RETURN(SafetensorsFile file, LoadSafetensors(dir / "model.safetensors"));
  ASSIGN_OR_RETURN(std::vector<TensorBuffer> tensors,
                   MapBertTensors(file, options.text(), (dir / "model.safetensors").string()));
  ASSIGN_OR_RETURN(std::shared_ptr<ModelImpl> model, BuildModel(options, seed));
  RETURN_IF_ERROR(Prefixed(LoadModuleTensors(*model, tensors, /*require_all=*/false),
                           (dir / "model.safetensors").string()));
  return model;
}

}  // namespace fedattn::models
