#include "fedattn/models/model_spec.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/config/yaml_reader.h"

namespace fedattn::models {
namespace {

absl::Status Invalid(absl::string_view message) { return absl::InvalidArgumentError(message); }

// Architecture keys of a text model: with `pretrained`, config.json gives them instead.
const std::vector<std::string> kTextArchitectureKeys = {
    "vocab_size", "max_positions", "type_vocab_size", "d_model", "num_layers", "num_heads",
    "ffn_dim",    "norm",          "layer_norm_eps",  "activation"};

void ReadEncoder(config::MapReader& model, EncoderOptions* encoder) {
  model.Optional("d_model", &encoder->d_model(), 1, 1 << 16);
  model.Optional("num_layers", &encoder->num_layers(), 0, 1024);
  model.Optional("num_heads", &encoder->num_heads(), 1, 1024);
  model.Optional("ffn_dim", &encoder->ffn_dim(), 1, 1 << 18);
  model.Optional("dropout", &encoder->dropout(), 0.0, 0.99);
  model.Optional("attention_dropout", &encoder->attention_dropout(), 0.0, 0.99);
  model.Optional("layer_norm_eps", &encoder->layer_norm_eps(), 0.0, 1.0);
  std::string norm = encoder->norm_first() ? "pre" : "post";
  model.OptionalEnum("norm", &norm, {"pre", "post"});
  encoder->norm_first(norm == "pre");
  model.OptionalEnum("activation", &encoder->activation(), {"gelu", "relu"});
}

void Add(ModelSpec* spec, std::string name, std::vector<int64_t> shape, bool trainable) {
  spec->tensors.push_back(TensorSpec{std::move(name), DType::kF32, std::move(shape), trainable});
}

void AddLayers(ModelSpec* spec, const EncoderOptions& encoder, const LoraOptions& lora, Trainable trainable) {
  const int64_t d = encoder.d_model(), f = encoder.ffn_dim(), r = lora.rank();
  const bool base = trainable == Trainable::kFull;
  for (int64_t i = 0; i < encoder.num_layers(); ++i) {
    const std::string p = absl::StrCat("layers.", i, ".");
    Add(spec, p + "qkv_weight", {3 * d, d}, base);
    Add(spec, p + "qkv_bias", {3 * d}, base);
    Add(spec, p + "out_weight", {d, d}, base);
    Add(spec, p + "out_bias", {d}, base);
    Add(spec, p + "attention_norm_weight", {d}, base);
    Add(spec, p + "attention_norm_bias", {d}, base);
    Add(spec, p + "ffn_in_weight", {f, d}, base);
    Add(spec, p + "ffn_in_bias", {f}, base);
    Add(spec, p + "ffn_out_weight", {d, f}, base);
    Add(spec, p + "ffn_out_bias", {d}, base);
    Add(spec, p + "ffn_norm_weight", {d}, base);
    Add(spec, p + "ffn_norm_bias", {d}, base);
    if (r == 0) continue;
    const bool adapters = trainable != Trainable::kHead;
    for (const char* target : {"query", "key", "value", "attention_output"}) {
      if (!lora.Targets(target)) continue;
      Add(spec, absl::StrCat(p, "lora_", target, "_a"), {r, d}, adapters);
      Add(spec, absl::StrCat(p, "lora_", target, "_b"), {d, r}, adapters);
    }
    if (lora.Targets("ffn")) {
      Add(spec, p + "lora_ffn_in_a", {r, d}, adapters);
      Add(spec, p + "lora_ffn_in_b", {f, r}, adapters);
      Add(spec, p + "lora_ffn_out_a", {r, f}, adapters);
      Add(spec, p + "lora_ffn_out_b", {d, r}, adapters);
    }
  }
}

}  // namespace

const std::vector<std::string>& LoraOptions::AllTargets() {
  static const std::vector<std::string> targets = {"query", "key", "value", "attention_output", "ffn"};
  return targets;
}

bool LoraOptions::Targets(absl::string_view target) const {
  return rank_ > 0 && std::find(targets_.begin(), targets_.end(), target) != targets_.end();
}

absl::Status LoraOptions::Validate() const {
  if (rank_ < 0) return Invalid("lora.rank must be >= 0");
  if (rank_ == 0) return absl::OkStatus();
  if (alpha_ <= 0) return Invalid("lora.alpha must be > 0");
  if (dropout_ < 0 || dropout_ >= 1) return Invalid("lora.dropout must be in [0, 1)");
  if (targets_.empty()) return Invalid("lora.targets is empty");
  for (const std::string& target : targets_) {
    if (std::find(AllTargets().begin(), AllTargets().end(), target) == AllTargets().end()) {
      return Invalid(absl::StrCat("lora.targets: unknown target '", target, "' (expected one of ",
                                  absl::StrJoin(AllTargets(), ", "), ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status EncoderOptions::Validate() const {
  if (d_model_ <= 0 || num_heads_ <= 0 || ffn_dim_ <= 0 || num_layers_ < 0) {
    return Invalid("d_model, num_heads and ffn_dim must be > 0 and num_layers >= 0");
  }
  if (d_model_ % num_heads_ != 0) {
    return Invalid(absl::StrCat("d_model (", d_model_, ") must be a multiple of num_heads (", num_heads_, ")"));
  }
  if (dropout_ < 0 || dropout_ >= 1 || attention_dropout_ < 0 || attention_dropout_ >= 1) {
    return Invalid("dropout and attention_dropout must be in [0, 1)");
  }
  if (activation_ != "gelu" && activation_ != "relu") {
    return Invalid(absl::StrCat("activation must be gelu or relu, got '", activation_, "'"));
  }
  return absl::OkStatus();
}

absl::Status TextClassifierOptions::Validate() const {
  RETURN_IF_ERROR(encoder_.Validate());
  if (vocab_size_ <= 0 || max_positions_ <= 1 || type_vocab_size_ <= 0) {
    return Invalid("vocab_size and type_vocab_size must be > 0 and max_positions > 1");
  }
  if (num_classes_ < 2) return Invalid("num_classes must be >= 2");
  if (pad_token_id_ < 0 || pad_token_id_ >= vocab_size_) return Invalid("pad_token_id is outside the vocabulary");
  return absl::OkStatus();
}

absl::Status TabularTransformerOptions::Validate() const {
  RETURN_IF_ERROR(encoder_.Validate());
  if (num_numeric_ < 0) return Invalid("num_numeric must be >= 0");
  for (int64_t cardinality : cardinalities_) {
    if (cardinality < 1) return Invalid("every categorical feature needs at least one category");
  }
  if (!regression_ && num_classes_ < 2) return Invalid("num_classes must be >= 2 for classification");
  return absl::OkStatus();
}

absl::string_view ModelKindName(ModelKind kind) {
  return kind == ModelKind::kTextClassifier ? "text_classifier" : "tabular_transformer";
}

absl::string_view TrainableName(Trainable trainable) {
  switch (trainable) {
    case Trainable::kFull: return "full";
    case Trainable::kLora: return "lora";
    case Trainable::kHead: return "head";
  }
  return "?";
}

absl::Status ModelOptions::Validate() const {
  RETURN_IF_ERROR(lora_.Validate());
  if (trainable_ == Trainable::kLora && lora_.rank() == 0) {
    return Invalid("trainable: lora needs lora.rank > 0");
  }
  if (kind_ == ModelKind::kTextClassifier) return text_.Validate();
  if (!pretrained_.empty()) return Invalid("pretrained is only for text_classifier");
  return tabular_.Validate();
}

void ReadModelOptions(config::MapReader& model, ModelOptions* options) {
  std::string kind;
  model.Required("kind", &kind);
  if (kind == "text_classifier") {
    options->kind(ModelKind::kTextClassifier);
  } else if (kind == "tabular_transformer") {
    options->kind(ModelKind::kTabularTransformer);
  } else if (!kind.empty()) {
    model.Error("kind", absl::StrCat("expected text_classifier or tabular_transformer, got '", kind, "'"));
  }
  if (options->kind() == ModelKind::kTextClassifier) {
    TextClassifierOptions& text = options->text();
    model.OptionalPath("pretrained", &options->pretrained());
    if (!options->pretrained().empty()) {
      for (const std::string& key : kTextArchitectureKeys) {
        if (model.Has(key)) model.Error(key, "comes from the pretrained config.json; remove it here");
      }
    }
    model.Optional("vocab_size", &text.vocab_size(), 1, 1 << 24);
    model.Optional("max_positions", &text.max_positions(), 2, 1 << 20);
    model.Optional("type_vocab_size", &text.type_vocab_size(), 1, 1024);
    model.Optional("num_classes", &text.num_classes(), 2, 1 << 20);
    ReadEncoder(model, &text.encoder());
  } else {
    TabularTransformerOptions& tabular = options->tabular();
    ReadEncoder(model, &tabular.encoder());
    std::string task = tabular.regression() ? "regression" : "classification";
    model.OptionalEnum("task", &task, {"classification", "regression"});
    tabular.regression(task == "regression");
  }
  std::string trainable(TrainableName(options->trainable()));
  model.OptionalEnum("trainable", &trainable, {"full", "lora", "head"});
  options->trainable(trainable == "lora" ? Trainable::kLora
                     : trainable == "head" ? Trainable::kHead
                                           : Trainable::kFull);
  if (model.Has("lora")) {
    config::MapReader lora = model.Map("lora");
    LoraOptions& out = options->lora();
    lora.Required("rank", &out.rank(), 1, 4096);
    lora.Optional("alpha", &out.alpha(), 1e-6, 1e6);
    lora.Optional("dropout", &out.dropout(), 0.0, 0.99);
    lora.Optional("targets", &out.targets());
  }
}

absl::StatusOr<ModelOptions> LoadModelOptions(const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(config::YamlDocument doc, config::YamlDocument::Load(path));
  ModelOptions options;
  {
    config::MapReader root = doc.Root();
    config::MapReader model = root.Map("model");
    ReadModelOptions(model, &options);
  }
  RETURN_IF_ERROR(doc.Finish());
  if (absl::Status status = options.Validate(); !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": model: ", status.message()));
  }
  return options;
}

int64_t TensorSpec::numel() const {
  int64_t n = 1;
  for (int64_t dim : shape) n *= dim;
  return n;
}

int64_t ModelSpec::NumParameters() const {
  int64_t n = 0;
  for (const TensorSpec& tensor : tensors) n += tensor.numel();
  return n;
}

int64_t ModelSpec::NumTrainable() const {
  int64_t n = 0;
  for (const TensorSpec& tensor : tensors) n += tensor.trainable ? tensor.numel() : 0;
  return n;
}

std::vector<TensorSpec> ModelSpec::TrainableTensors() const {
  std::vector<TensorSpec> out;
  for (const TensorSpec& tensor : tensors) {
    if (tensor.trainable) out.push_back(tensor);
  }
  return out;
}

absl::StatusOr<ModelSpec> BuildModelSpec(const ModelOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  ModelSpec spec;
  const bool full = options.trainable() == Trainable::kFull;
  if (options.kind() == ModelKind::kTextClassifier) {
    const TextClassifierOptions& text = options.text();
    const int64_t d = text.encoder().d_model();
    Add(&spec, "word_embeddings", {text.vocab_size(), d}, full);
    Add(&spec, "position_embeddings", {text.max_positions(), d}, full);
    Add(&spec, "token_type_embeddings", {text.type_vocab_size(), d}, full);
    Add(&spec, "embedding_norm_weight", {d}, full);
    Add(&spec, "embedding_norm_bias", {d}, full);
    if (text.encoder().norm_first()) {
      Add(&spec, "final_norm_weight", {d}, full);
      Add(&spec, "final_norm_bias", {d}, full);
    }
    Add(&spec, "pooler_weight", {d, d}, true);
    Add(&spec, "pooler_bias", {d}, true);
    Add(&spec, "classifier_weight", {text.num_classes(), d}, true);
    Add(&spec, "classifier_bias", {text.num_classes()}, true);
    AddLayers(&spec, text.encoder(), options.lora(), options.trainable());
    return spec;
  }
  const TabularTransformerOptions& tabular = options.tabular();
  const int64_t d = tabular.encoder().d_model();
  const int64_t num_categorical = static_cast<int64_t>(tabular.cardinalities().size());
  if (tabular.num_numeric() + num_categorical == 0) {
    return Invalid("tabular_transformer needs at least one feature (none in the data schema)");
  }
  if (tabular.num_numeric() > 0) {
    Add(&spec, "numeric_weight", {tabular.num_numeric(), d}, full);
    Add(&spec, "numeric_bias", {tabular.num_numeric(), d}, full);
  }
  if (num_categorical > 0) {
    int64_t total = 0;
    for (int64_t cardinality : tabular.cardinalities()) total += cardinality;
    Add(&spec, "category_embeddings", {total, d}, full);
    Add(&spec, "category_bias", {num_categorical, d}, full);
  }
  Add(&spec, "cls_token", {d}, full);
  Add(&spec, "head_norm_weight", {d}, true);
  Add(&spec, "head_norm_bias", {d}, true);
  Add(&spec, "head_weight", {tabular.num_outputs(), d}, true);
  Add(&spec, "head_bias", {tabular.num_outputs()}, true);
  AddLayers(&spec, tabular.encoder(), options.lora(), options.trainable());
  return spec;
}

}  // namespace fedattn::models
