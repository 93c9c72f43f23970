// The coordinator's durable record of jobs and rounds (SQLite, WAL, fsync on commit) under the
// state directory, beside the checkpoints. A round is committed in one transaction after its
// model file is on disk, so a kill -9 at any point leaves either the previous committed round
// or the new one, never half of one.
//
// Thread-safe: every method takes an internal lock.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fedattn/storage/database.h"

namespace fedattn::coordinator {

using MetricMap = std::map<std::string, double>;

// Job states: queued → running → completed | failed | cancelled.
struct JobRecord {
  std::string id;
  std::string name;
  std::string config;  // self-contained job YAML
  std::string state;
  int64_t rounds = 0;
  int64_t committed_rounds = 0;
  absl::Time submitted;
  std::optional<absl::Time> finished;
  std::string error;
  std::string submitted_by;
  bool Finished() const { return state == "completed" || state == "failed" || state == "cancelled"; }
};

// One site's part in a round: selected, trained (result in), contributed (in the aggregate),
// refused (policy or privacy cap), failed, dropped (missed a deadline).
struct RoundSiteRecord {
  std::string site;
  std::string status;
  std::string reason;
  int64_t num_examples = 0;
  double epsilon_spent = 0;
  double epsilon_cumulative = 0;
};

struct RoundRecord {
  int64_t round = 0;
  std::string state;  // training, share_keys, masked_input, unmask, aggregating, committed, failed
  absl::Time started;
  std::optional<absl::Time> finished;
  MetricMap train_metrics;
  MetricMap validation_metrics;
  std::string error;
  std::string model_sha256;  // hex, once committed
  std::vector<RoundSiteRecord> sites;
};

class JobStore {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::filesystem::path& state_dir);

  // Records a queued job and returns its id ("<name>-<n>").
  [[nodiscard]] absl::StatusOr<std::string> CreateJob(const std::string& name, const std::string& config,
                                                      int64_t rounds, const std::string& submitted_by,
                                                      absl::Time now);
  [[nodiscard]] absl::Status SetJobState(const std::string& job_id, const std::string& state,
                                         const std::string& error, absl::Time now);
  [[nodiscard]] absl::StatusOr<JobRecord> GetJob(const std::string& job_id);
  [[nodiscard]] absl::StatusOr<std::vector<JobRecord>> ListJobs();

  // (Re)starts a round: its record is reset and its site rows cleared. A committed round cannot
  // start again (FailedPrecondition).
  [[nodiscard]] absl::Status StartRound(const std::string& job_id, int64_t round, absl::Time now);
  [[nodiscard]] absl::Status SetRoundState(const std::string& job_id, int64_t round, const std::string& state,
                                           const std::string& error, absl::Time now);
  [[nodiscard]] absl::Status PutRoundSite(const std::string& job_id, int64_t round, const RoundSiteRecord& site);
  // In one transaction: the round committed with its metrics and model hash, the job's committed
  // round count advanced, and the job completed when this was its last round.
  [[nodiscard]] absl::Status CommitRound(const std::string& job_id, int64_t round, const MetricMap& train_metrics,
                                         const MetricMap& validation_metrics, const std::string& model_sha256,
                                         absl::Time now);
  [[nodiscard]] absl::StatusOr<std::vector<RoundRecord>> Rounds(const std::string& job_id);

 private:
  explicit JobStore(std::unique_ptr<storage::Database> db) : db_(std::move(db)) {}
  absl::Mutex mu_;
  std::unique_ptr<storage::Database> db_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fedattn::coordinator
