// Trains one model centrally on one dataset from a train config (configs/train/*.yaml): the
// non-federated baseline behind `fedattn-agent train --config FILE`.
#pragma once

#include <filesystem>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fedattn/models/data.h"
#include "fedattn/models/model_spec.h"
#include "fedattn/models/trainer.h"

namespace fedattn::models {

struct TrainConfig {
  absl::Status Validate() const;

  std::filesystem::path source;       // the config file
  ModelOptions model;                 // from train.model (a model config file)
  std::filesystem::path model_config;
  DataKind data_kind = DataKind::kTabular;
  std::filesystem::path data_path;    // CSV (tabular, text) or JSONL (text)
  TabularSchema schema;               // tabular: from data.schema
  std::filesystem::path schema_path;
  TextDataOptions text;               // text: columns and classes
  std::filesystem::path vocab;        // text: vocab.txt (default: the pretrained model's)
  int64_t max_length = 128;           // text: tokens per example, [CLS]/[SEP] included
  double validation_fraction = 0.2;   // share of rows held out, stratified by class
  uint64_t split_seed = 0;
  TrainerOptions trainer;
  std::filesystem::path output;       // optional: safetensors file for the trained model
};

// Loads a train config and everything it references (model config, data schema), validated.
[[nodiscard]] absl::StatusOr<TrainConfig> LoadTrainConfig(const std::filesystem::path& path);

struct CentralTrainingResult {
  TrainResult train;
  int64_t train_examples = 0, validation_examples = 0;
  int64_t parameters = 0, trainable_parameters = 0;
};

// Loads the data, builds (or imports) the model, trains, prints progress and a final summary to
// `out`, and saves the model when the config names an output. Errors name the file at fault.
[[nodiscard]] absl::StatusOr<CentralTrainingResult> RunCentralTraining(const std::filesystem::path& config_path,
                                                                       std::ostream& out);

// libgomp reads OMP_WAIT_POLICY once, when it is loaded, and spin-waiting threads slow training
// several-fold on shared cores. If the variable is unset, this sets it to "passive" and re-executes
// the current process (/proc/self/exe with the same arguments); it returns only if the variable
// was already set or re-execution failed. Call first thing in a training command.
void EnsurePassiveOpenMpWait();

}  // namespace fedattn::models
