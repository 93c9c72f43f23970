// Trains one model centrally on one dataset from a train config (configs/train/*.yaml): the
// non-federated baseline behind `fedattn-agent train --config FILE`.
#pragma once

#include <filesystem>
#include <optional>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fedattn/dp/accountant.h"
#include "fedattn/models/data.h"
#include "fedattn/models/model_spec.h"
#include "fedattn/models/trainer.h"

namespace fedattn::parallel {
class Collective;
}

namespace fedattn::models {

// `train.privacy:` — train with DP-SGD (sample-level DP, see docs/privacy.md) and report the
// (ε, δ) the run spent, from the RDP accountant over the default order grid.
struct PrivacyConfig {
  absl::Status Validate() const;

  double noise_multiplier = 0;     // σ; exactly one of this and target_epsilon is set
  double target_epsilon = 0;       // calibrate σ so the whole run meets (target_epsilon, delta)
  double max_grad_norm = 1.0;      // C, per example
  double delta = 1e-5;             // should be well below 1 / training examples
  double sampling_rate = 0;        // q; 0 = expected_batch_size / training examples
  double expected_batch_size = 0;  // 0 = trainer.batch_size (when sampling_rate is 0 too)
  int64_t steps = 0;               // 0 = trainer.epochs * round(1 / q)
  std::optional<uint64_t> seed;    // tests only: fixed sampling and noise seed (no privacy)
};

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
  std::optional<PrivacyConfig> privacy;  // DP-SGD when present
  std::filesystem::path output;       // optional: safetensors file for the trained model
};

// Loads a train config and everything it references (model config, data schema), validated.
[[nodiscard]] absl::StatusOr<TrainConfig> LoadTrainConfig(const std::filesystem::path& path);

struct CentralTrainingResult {
  TrainResult train;
  int64_t train_examples = 0, validation_examples = 0;
  int64_t parameters = 0, trainable_parameters = 0;
  std::optional<dp::PrivacyGuarantee> privacy;  // DP-SGD runs: what the run spent
};

// Loads the data, builds (or imports) the model, trains, prints progress and a final summary to
// `out`, and saves the model when the config names an output. Errors name the file at fault.
//
// With a `collective` of several ranks (mpirun -np N fedattn-agent train), every rank calls this
// with the same config: training is data-parallel (Trainer::set_collective), the result is the
// same on every rank, and only rank 0 saves the model (pass a discarding stream as `out` on the
// others). The privacy accounting is the site-level one: q over all training examples.
[[nodiscard]] absl::StatusOr<CentralTrainingResult> RunCentralTraining(const std::filesystem::path& config_path,
                                                                       std::ostream& out,
                                                                       parallel::Collective* collective = nullptr);

// libgomp reads OMP_WAIT_POLICY once, when it is loaded, and spin-waiting threads slow training
// several-fold on shared cores. If the variable is unset, this sets it to "passive" and re-executes
// the current process (/proc/self/exe with the same arguments); it returns only if the variable
// was already set or re-execution failed. Call first thing in a training command.
void EnsurePassiveOpenMpWait();

}  // namespace fedattn::models
