#include "fedattn/agent/site_workers.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "fedattn/common/logging.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/models/job_spec.h"

namespace fedattn::agent {
namespace {

// The fixed-size part of a train message (same binary on every rank: memcpy is enough).
struct WireOptions {
  int64_t round = 0;
  uint64_t seed = 0;
  double proximal_mu = 0;
  int64_t train_examples = 0;  // the leader's count: every rank must read the same data
  uint8_t evaluate = 0, has_dp = 0;
  double noise_multiplier = 0, max_grad_norm = 0, sampling_rate = 0, expected_batch_size = 0;
  int64_t steps = 0;
};

std::string EncodeTrain(const std::string& job_config, const LocalTrainingOptions& options, int64_t train_examples) {
  WireOptions wire;
  wire.round = options.round;
  wire.seed = options.seed;
  wire.proximal_mu = options.proximal_mu;
  wire.train_examples = train_examples;
  wire.evaluate = options.evaluate ? 1 : 0;
  if (options.dp) {
    wire.has_dp = 1;
    wire.noise_multiplier = options.dp->noise_multiplier();
    wire.max_grad_norm = options.dp->max_grad_norm();
    wire.sampling_rate = options.dp->sampling_rate();
    wire.expected_batch_size = options.dp->expected_batch_size();
    wire.steps = options.dp->steps();
  }
  std::string out = "T";
  out.append(reinterpret_cast<const char*>(&wire), sizeof(wire));
  out += job_config;
  return out;
}

absl::Status DecodeTrain(const std::string& message, std::string* job_config, LocalTrainingOptions* options,
                         int64_t* train_examples) {
  if (message.size() < 1 + sizeof(WireOptions)) return absl::DataLossError("truncated train message from rank 0");
  WireOptions wire;
  std::memcpy(&wire, message.data() + 1, sizeof(wire));
  *job_config = message.substr(1 + sizeof(wire));
  options->round = wire.round;
  options->seed = wire.seed;
  options->proximal_mu = wire.proximal_mu;
  options->evaluate = wire.evaluate != 0;
  *train_examples = wire.train_examples;
  if (wire.has_dp) {
    options->dp = models::DpSgdOptions()
                      .noise_multiplier(wire.noise_multiplier)
                      .max_grad_norm(wire.max_grad_norm)
                      .sampling_rate(wire.sampling_rate)
                      .expected_batch_size(wire.expected_batch_size)
                      .steps(wire.steps);
  }
  return absl::OkStatus();
}

// One train task on a worker: its data and model, then the same TrainLocally as the leader.
void RunTrainOnWorker(parallel::Collective& collective, const AgentOptions& site, const std::string& message) {
  std::string job_config;
  LocalTrainingOptions options;
  int64_t leader_examples = 0;
  absl::Status prepared = DecodeTrain(message, &job_config, &options, &leader_examples);
  absl::StatusOr<models::JobSpec> job = absl::UnknownError("not parsed");
  absl::StatusOr<LocalDataset> data = absl::UnknownError("not loaded");
  absl::StatusOr<std::shared_ptr<models::ModelImpl>> model = absl::UnknownError("not built");
  if (prepared.ok()) {
    job = models::ParseJobSpec(job_config, "the leader's job");
    prepared = job.status();
  }
  if (prepared.ok()) {
    data = LoadLocalDataset(site.data, *job);
    prepared = data.status();
  }
  if (prepared.ok() && data->train.size() != leader_examples) {
    prepared = absl::FailedPreconditionError(absl::StrCat(
        site.data.path.string(), " gives ", data->train.size(), " training rows on this rank, ", leader_examples,
        " on rank 0: every rank must read the same data (copy the file to every machine)"));
  }
  if (prepared.ok()) {
    model = BuildJobModel(*job);
    prepared = model.status();
  }
  if (!prepared.ok()) {
    // Meets the leader's AgreeOnStatus at the start of TrainLocally: the task fails with this.
    spdlog::error("rank {}: cannot train: {}", collective.rank(), prepared.message());
    (void)parallel::AgreeOnStatus(collective, prepared);
    return;
  }
  options.collective = &collective;
  absl::StatusOr<LocalTrainingResult> trained = TrainLocally(*job, *model, *data, options);
  if (trained.ok()) {
    spdlog::info("rank {}: trained its share: {} steps in {:.1f} s", collective.rank(), trained->steps,
                 trained->seconds);
  } else {
    spdlog::error("rank {}: training failed: {}", collective.rank(), trained.status().message());
  }
}

}  // namespace

SiteWorkers::SiteWorkers(parallel::Collective* collective, absl::Duration heartbeat)
    : collective_(collective), heartbeat_(heartbeat) {
  thread_ = std::thread([this] { Heartbeat(); });
}

SiteWorkers::~SiteWorkers() { Stop(); }

void SiteWorkers::Heartbeat() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopped_) {
    wake_.wait_for(lock, absl::ToChronoMilliseconds(heartbeat_));
    if (stopped_ || busy_) continue;
    std::string ping = "P";
    if (absl::Status sent = parallel::BroadcastString(*collective_, &ping, 0); !sent.ok()) {
      spdlog::error("the site's worker ranks are unreachable: {}", sent.message());
      return;
    }
  }
}

absl::Status SiteWorkers::BeginTrain(const std::string& job_config, const LocalTrainingOptions& options,
                                     int64_t train_examples) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return absl::FailedPreconditionError("the site's worker ranks were stopped");
  if (collective_->broken()) {
    return absl::UnavailableError("the site's worker ranks are unreachable (an earlier collective failed)");
  }
  busy_ = true;
  std::string message = EncodeTrain(job_config, options, train_examples);
  absl::Status sent = parallel::BroadcastString(*collective_, &message, 0);
  if (!sent.ok()) busy_ = false;
  return sent;
}

void SiteWorkers::EndTrain() {
  std::lock_guard<std::mutex> lock(mu_);
  busy_ = false;
}

void SiteWorkers::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopped_) {
      stopped_ = true;
      if (!collective_->broken()) {
        std::string stop = "S";
        if (absl::Status sent = parallel::BroadcastString(*collective_, &stop, 0); !sent.ok()) {
          spdlog::warn("could not stop the worker ranks: {}", sent.message());
        }
      }
    }
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

absl::Status RunSiteWorker(parallel::Collective& collective, const AgentOptions& options) {
  spdlog::info("rank {} of {} ({}): waiting for work from rank 0", collective.rank(), collective.size(),
               collective.backend());
  while (true) {
    std::string message;
    absl::Status received = parallel::BroadcastString(collective, &message, 0);
    if (!received.ok()) {
      return absl::Status(received.code(), absl::StrCat("lost rank 0 (the leader): ", received.message()));
    }
    if (message == "P") continue;
    if (message == "S") return absl::OkStatus();
    if (!message.empty() && message[0] == 'T') {
      RunTrainOnWorker(collective, options, message);
      if (collective.broken()) return absl::UnavailableError("the site's collective broke during training");
      continue;
    }
    return absl::DataLossError(absl::StrCat("unknown message from rank 0 (", message.size(), " bytes)"));
  }
}

}  // namespace fedattn::agent
