// A site's part of a round, on its own data: load the dataset a job describes, start from the
// global model, train (with DP-SGD when the job asks), and return the update. LibTorch.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "fedattn/agent/site_policy.h"
#include "fedattn/models/batch.h"
#include "fedattn/models/job_spec.h"
#include "fedattn/models/trainer.h"
#include "fedattn/models/transformer.h"
#include "fedattn/tensor/tensor_buffer.h"

namespace fedattn::parallel {
class Collective;
}

namespace fedattn::agent {

struct LocalDataset {
  models::Batch train, validation;
};

// The site's data file read with the job's schema and split (job.data.validation_fraction,
// stratified, seeded by the job). Errors name the file, row and column.
[[nodiscard]] absl::StatusOr<LocalDataset> LoadLocalDataset(const SiteData& data, const models::JobSpec& job);

// The job's model with its initial weights (the job's seed): what an init task sends.
[[nodiscard]] absl::StatusOr<std::shared_ptr<models::ModelImpl>> BuildJobModel(const models::JobSpec& job);

struct LocalTrainingOptions {
  int64_t round = 0;
  uint64_t seed = 0;             // shuffling, dropout (not the DP noise: that is from the CSPRNG)
  double proximal_mu = 0;        // FedProx: gradient of (mu/2)||w - w_global||^2 added each step
  bool evaluate = false;         // metrics on the validation split after training
  std::optional<models::DpSgdOptions> dp;  // DP-SGD; unset = plain local training
  // The site's ranks under mpirun (not owned; null = this process alone): every rank calls
  // TrainLocally with the same job and options, starts from rank 0's model, and trains
  // data-parallel; every rank returns the same update, or the first failing rank's error.
  parallel::Collective* collective = nullptr;
  models::TrainProgressCallback progress;  // after every step (a progress bar); empty = none
};

struct LocalTrainingResult {
  std::vector<float> update;     // new - old trainable parameters, in the model's trainable layout
  int64_t num_examples = 0;      // training examples
  int64_t steps = 0;
  std::map<std::string, double> train_metrics;       // "loss"
  int64_t validation_examples = 0;
  std::map<std::string, double> validation_metrics;  // accuracy, roc_auc, ... (when evaluated)
  std::optional<models::DpSgdSummary> dp;
  double seconds = 0;
};

// Trains `model` (holding the global weights) in place on `data` per the job's local settings.
[[nodiscard]] absl::StatusOr<LocalTrainingResult> TrainLocally(const models::JobSpec& job,
                                                               std::shared_ptr<models::ModelImpl> model,
                                                               const LocalDataset& data,
                                                               const LocalTrainingOptions& options);

}  // namespace fedattn::agent
