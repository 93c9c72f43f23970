// Plain data passed between the round engine and a Strategy (Flower's FitRes / EvaluateRes /
// failures vocabulary), on flat float buffers.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace fedattn::coordinator::strategy {

// Named scalar metrics a site reports (accuracy, loss, auc, ...).
using Metrics = std::map<std::string, double>;

// Scalar settings sent to the sites with a round's task (Flower's fit config), e.g. "round",
// "proximal_mu".
using ConfigRecord = std::map<std::string, double>;

// One site's training result. `update` is the site's update, new − old weights, as one flat
// buffer in the model's canonical parameter order. The span is borrowed: it must stay valid only
// for the duration of the call that receives it; no strategy keeps it (robust rules copy it).
struct FitResult {
  std::string site;
  int64_t num_examples = 0;  // local training examples; the FedAvg weight
  std::span<const float> update;
  Metrics metrics;  // training metrics, aggregated weighted by num_examples
};

// One site's evaluation on its local validation split.
struct EvaluateResult {
  std::string site;
  int64_t num_examples = 0;  // validation examples; the metric weight
  Metrics metrics;
};

// A site that produced no usable result this round: dropped, missed a deadline, refused (privacy
// cap), or whose result a strategy rejected. Failures are data, never exceptions.
struct SiteFailure {
  std::string site;
  absl::Status status;
};

// What Finish reports about a round.
struct RoundSummary {
  int round = 0;
  int num_results = 0;       // accepted results (a SecAgg sum counts as its num_sites)
  double total_weight = 0;   // sum of accepted num_examples
  Metrics metrics;           // training metrics, weighted by num_examples
  std::vector<SiteFailure> failures;  // AddFailure rows and rejected results, in recorded order
};

// A named flat buffer of strategy state (server optimizer moments) for persistence.
struct NamedBuffer {
  std::string name;
  std::vector<float> values;
};

}  // namespace fedattn::coordinator::strategy
