// A federated training job (configs/jobs/*.yaml; every key in docs/jobs.md), without LibTorch.
//
// The operator writes a job file that may name other files (the model config, the data schema).
// `fedattn job submit` turns it into one self-contained YAML text with ResolveJobFile; the
// coordinator stores that text and sends it verbatim to every site, and both sides read it with
// ParseJobSpec, so they can never disagree about what a job means.
//
//   ASSIGN_OR_RETURN(std::string text, ResolveJobFile("configs/jobs/wdbc_dp.yaml"));
//   ASSIGN_OR_RETURN(JobSpec job, ParseJobSpec(text, "job wdbc-dp"));
//   ASSIGN_OR_RETURN(ModelSpec spec, BuildModelSpec(job.model));  // not for pretrained models
//
// Thread safety: pure functions on values.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fedattn/models/data_schema.h"
#include "fedattn/models/model_spec.h"

namespace fedattn::models {

struct JobData {
  DataKind kind = DataKind::kTabular;
  TabularSchema schema;              // tabular
  TextDataOptions text;              // text: columns and classes
  int64_t max_length = 128;          // text: tokens per example, [CLS]/[SEP] included
  std::filesystem::path vocab;       // text: vocab.txt on each site (default: the pretrained model's)
  double validation_fraction = 0.2;  // share of each site's rows held out (stratified by class)
};

struct JobSites {
  double fraction = 1.0;  // (0, 1]: share of the online eligible sites sampled per round
  int64_t min_sites = 2;  // >= 1 (>= 2 with SecAgg): results a round needs to commit
};

// The aggregation rule (docs/strategies.md) and its hyper-parameters. `params` holds every
// hyper-parameter of the named strategy, defaults filled in, and nothing else:
//   fedprox: proximal_mu; fedadam/fedyogi: server_lr, beta1, beta2, tau;
//   fedadagrad: server_lr, beta1, tau; trimmed_mean: trim_fraction.
struct JobStrategy {
  std::string name = "fedavg";
  std::map<std::string, double> params;
  // The value of a hyper-parameter of this strategy. REQUIRES: Has(key).
  double Get(const std::string& key) const { return params.at(key); }
  bool Has(const std::string& key) const { return params.count(key) > 0; }
};

// Every strategy name, and whether it needs every update (and so cannot run under SecAgg).
const std::vector<std::string>& AllStrategyNames();
bool IsRobustStrategy(absl::string_view name);

// A site's local training in each round (the subset of the trainer's options a job sets).
struct JobLocalTraining {
  int64_t epochs = 0;  // exactly one of epochs and steps is > 0
  int64_t steps = 0;
  int64_t batch_size = 32;  // expected batch size; with DP-SGD the Poisson rate is batch_size / N
  double lr = 1e-3;         // AdamW peak learning rate
  double weight_decay = 0.01;
  int64_t warmup_steps = 0;  // within each round
  std::string decay = "constant";  // constant | linear | cosine, over each round's local steps
  int64_t threads = 0;             // 0: the CPUs the agent may use
  std::string device = "cpu";      // cpu | cuda | auto
};

// DP-SGD at each site (Abadi et al. 2016): Poisson sampling, per-example clipping to C, noise σC.
struct SampleLevelDp {
  bool enabled = false;
  double noise_multiplier = 0;  // σ > 0; 0 when target_epsilon is given instead
  double target_epsilon = 0;    // > 0: each site calibrates σ for the whole job at its own q
  double max_grad_norm = 1.0;   // C > 0
  double delta = 1e-5;          // (0, 1)
};

// DP-FedAvg on the update (McMahan et al. 2018): clip to S, each site adds its share of z·S noise.
struct ClientLevelDp {
  bool enabled = false;
  double clip_norm = 1.0;         // S > 0
  double noise_multiplier = 0.0;  // z >= 0
};

struct JobSecAgg {
  bool enabled = true;
  int64_t degree = 0;                 // k neighbours; 0 = complete graph
  int64_t threshold = 0;              // t shares; 0 = smallest strict majority
  // [0, 0.5): the dropout rate the parameters are checked against (abort probability <= 1%,
  // secagg/config.h). 0 by default, not 0.1: with few sites no rate above ~0.005 passes the check
  // for the complete graph's majority threshold (2 sites: t = 2), and a round still survives
  // n - t dropouts whatever this says.
  double max_dropout_fraction = 0.0;
  double coordinate_clip = 1.0;       // > 0: per-coordinate clip of the encoded update
};

struct JobSpec {
  std::string name;  // [a-z0-9._-]{1,64}
  uint64_t seed = 0;  // model initialisation and site sampling
  // The model, with the tabular input sizes and task already taken from data.schema and a text
  // model's num_classes from data.classes: BuildModelSpec(model) gives the tensors, except for a
  // pretrained text model, whose architecture comes from its config.json at each site.
  ModelOptions model;
  JobData data;
  int64_t rounds = 1;
  JobSites sites;
  JobStrategy strategy;
  JobLocalTraining local;
  SampleLevelDp sample_dp;
  ClientLevelDp client_dp;
  JobSecAgg secagg;
  double train_deadline_s = 600;  // task posted -> update (or SecAgg key advertisement) received
  double stage_deadline_s = 60;   // each SecAgg stage after training
  int64_t evaluate_every = 1;     // rounds between site evaluations; 0 = never
  int64_t checkpoint_every = 1;   // rounds between saved global models; 0 = last round only
};

// Reads the operator's job file, inlines what it references (job.model: a path becomes that
// file's `model:` mapping; job.data.schema: a path becomes that file's `schema:` mapping; relative
// paths are against the job file's directory), validates the whole job, and returns it as one
// self-contained YAML text that ParseJobSpec accepts. Errors: NOT_FOUND for a missing file;
// INVALID_ARGUMENT listing every problem as "file:line: key.path: message" (the job file's lines,
// or the referenced file's for a problem inside it).
[[nodiscard]] absl::StatusOr<std::string> ResolveJobFile(const std::filesystem::path& path);

// Parses and validates a self-contained job (ResolveJobFile's output). `source_name` stands for
// the file in messages. Errors: INVALID_ARGUMENT listing every problem as
// "source:line: job.key.path: message" (unknown keys, ranges, and the cross-key rules of
// docs/jobs.md).
[[nodiscard]] absl::StatusOr<JobSpec> ParseJobSpec(absl::string_view yaml_text, absl::string_view source_name);

// What a site's sample-level DP looks like for its own data: the Poisson rate and step counts
// that go into its privacy ledger, and σ (given, or calibrated from target_epsilon).
struct SampleDpPlan {
  double sampling_rate = 0;      // q = min(1, batch_size / train_examples)
  int64_t steps_per_round = 0;   // local.steps, or epochs * ceil(train_examples / batch_size)
  int64_t total_steps = 0;       // rounds * steps_per_round: the most the job can spend here
  double noise_multiplier = 0;   // σ
};

// REQUIRES: job.sample_dp.enabled. With target_epsilon, σ is the smallest noise multiplier for
// which total_steps steps at q stay within (target_epsilon, delta) (dp/calibration.h), assuming
// the site takes part in every round. Errors: INVALID_ARGUMENT for train_examples < 1 or DP off;
// OUT_OF_RANGE when the target cannot be met (from the calibration).
[[nodiscard]] absl::StatusOr<SampleDpPlan> PlanSampleDp(const JobSpec& job, int64_t train_examples);

// One line for logs and status: "DP-SGD sigma=1 C=1 delta=1e-05; client DP off; SecAgg on (k=all)".
std::string DescribePrivacy(const JobSpec& job);

}  // namespace fedattn::models
