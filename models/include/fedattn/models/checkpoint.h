// A model as a set of named tensors: saved and loaded as safetensors (with the FedAttn checksum),
// and imported from a Hugging Face BERT checkpoint (model.safetensors + config.json + vocab.txt:
// BERT-base, BioClinicalBERT, bert-tiny, ... share the tensor names).
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fedattn/models/model_spec.h"
#include "fedattn/models/transformer.h"
#include "fedattn/tensor/safetensors.h"

namespace fedattn::models {

// Copies the module's parameters (all, or those with requires_grad) into buffers, in order.
[[nodiscard]] absl::StatusOr<std::vector<TensorBuffer>> ModuleTensors(torch::nn::Module& module,
                                                                      bool trainable_only = false);

// Copies `tensors` into the module's parameters of the same names. Every parameter must be
// present when `require_all` (otherwise absent ones keep their values); a missing, unknown or
// mis-shaped tensor is INVALID_ARGUMENT naming it.
[[nodiscard]] absl::Status LoadModuleTensors(torch::nn::Module& module, const std::vector<TensorBuffer>& tensors,
                                             bool require_all = true);

// Saves every parameter, with metadata "fedattn.model_kind" and `metadata`.
[[nodiscard]] absl::Status SaveModel(ModelImpl& model, const std::filesystem::path& path,
                                     std::map<std::string, std::string> metadata = {});
[[nodiscard]] absl::Status LoadModel(ModelImpl& model, const std::filesystem::path& path);

// Reads a Hugging Face BertConfig (config.json) into text-model options (num_classes from
// "num_labels" or "id2label" when present, else kept). Errors name the file and key.
[[nodiscard]] absl::Status ReadBertConfig(const std::filesystem::path& path, TextClassifierOptions* options);

// Maps Hugging Face BERT tensor names (with or without the "bert." prefix; LayerNorm gamma/beta
// or weight/bias) onto text_classifier names, fusing query/key/value into qkv_*. Every encoder
// tensor must be present with the shape `options` implies; the pooler and classifier are taken
// when present and shaped right, else left out (they keep their fresh initialisation).
[[nodiscard]] absl::StatusOr<std::vector<TensorBuffer>> MapBertTensors(const SafetensorsFile& checkpoint,
                                                                       const TextClassifierOptions& options,
                                                                       absl::string_view source);

// Builds a text classifier from options.pretrained() (a directory with config.json and
// model.safetensors): architecture from config.json, LoRA/trainable/num_classes from `options`.
[[nodiscard]] absl::StatusOr<std::shared_ptr<ModelImpl>> ImportBert(ModelOptions options, uint64_t seed);

}  // namespace fedattn::models
