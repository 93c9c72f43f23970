// Runs one job: its rounds one after another, each a state machine
//   select → (init) → train → [SecAgg: share keys → masked input → unmask] → aggregate → commit
// driven by a thread of its own and by the site calls (site_service.cc) that deliver results.
// Every transition that matters is in the JobStore; a committed round's model and strategy state
// are files in the job's directory, so a restarted coordinator resumes at the round it was in.
//
// Sites never share a code path with the round's outcome: a site that refuses, fails or misses a
// deadline becomes a failure row handed to the strategy, and the round commits if min_sites
// results remain (SecAgg recovers sites that drop after masking). A round that cannot commit is
// recorded as failed and tried again, up to kMaxRoundAttempts times, before the job fails.
//
// Thread-safe: site calls may arrive on any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "fedattn/audit/audit_log.h"
#include "fedattn/common/clock.h"
#include "fedattn/coordinator/coordinator_options.h"
#include "fedattn/coordinator/global_model.h"
#include "fedattn/coordinator/job_store.h"
#include "fedattn/coordinator/site_registry.h"
#include "fedattn/coordinator/strategy/strategy.h"
#include "fedattn/coordinator/task_board.h"
#include "fedattn/coordinator/upload_spool.h"
#include "fedattn/models/job_spec.h"
#include "fedattn/secagg/server.h"
#include "fedattn/v1/fedattn.pb.h"

namespace fedattn::coordinator {

// What a JobRunner needs from the coordinator; all borrowed, all outliving the runner.
struct JobContext {
  const CoordinatorOptions* options = nullptr;
  SiteRegistry* registry = nullptr;
  JobStore* store = nullptr;
  TaskBoard* tasks = nullptr;
  const Clock* clock = nullptr;
  // The audit log (docs/formats/audit-log.md): job and round events, and the sites' ledger
  // entries. A site's update is accepted only once its ledger entry is in it, and a site whose
  // logged budget cannot afford a round is not selected. Null only in tests of the round engine.
  audit::AuditLog* audit = nullptr;
};

class JobRunner {
 public:
  static constexpr int kMaxRoundAttempts = 3;

  // Parses the job's config and starts its thread. Errors in the config fail the job at once.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<JobRunner>> Start(JobContext context, JobRecord job);
  ~JobRunner();  // stops the thread (the job stays as it is in the store)

  // Removes from a job's directory the files of rounds before `round`: their server optimizer
  // state, and their checkpoints but round 0's and every `checkpoint_every`-th.
  static void PruneRoundFiles(const std::filesystem::path& dir, int64_t round, int64_t checkpoint_every);

  const std::string& job_id() const { return job_.id; }
  bool finished() const { return finished_.load(); }
  void Cancel();

  // `site` says it is idle (a heartbeat): if it holds an unanswered task of the open round that
  // is no longer queued, the task was lost on the way (a PullTask answer that never arrived, an
  // agent restarted after taking it), so it is queued again, same nonce, same deadline. A task
  // the site has answered in any way (an upload, a key advertisement, a report) is never resent.
  void RedeliverIfLost(const std::string& site);

  // --- site calls. Each checks that `ref` is the running round's, for this site, with its nonce:
  // FAILED_PRECONDITION otherwise (a stale or replayed message).
  [[nodiscard]] absl::Status CheckRound(const v1::RoundRef& ref, const std::string& site);
  // The model the site's task starts from, for a download stream (views stay valid until
  // `version` changes; the caller re-checks ModelVersion() between chunks).
  [[nodiscard]] absl::StatusOr<std::vector<rpc::TensorView>> ModelForDownload(const v1::RoundRef& ref,
                                                                              const std::string& site,
                                                                              uint64_t* version);
  uint64_t ModelVersion() const { return model_version_.load(); }
  // Starts receiving an upload: the spool it goes into.
  [[nodiscard]] absl::StatusOr<std::unique_ptr<UploadSpool>> BeginUpload(const v1::RoundRef& ref,
                                                                         const std::string& site);
  // A complete upload (init: the model tensors instead, collected in memory).
  [[nodiscard]] absl::Status FinishUpload(const v1::RoundRef& ref, const std::string& site,
                                          const v1::TrainReport& report, std::unique_ptr<UploadSpool> spool);
  // The initial model is checked against the job's model here, so the site hears what is wrong.
  [[nodiscard]] absl::Status FinishInitUpload(const v1::RoundRef& ref, const std::string& site,
                                              std::vector<TensorBuffer> tensors);
  // An initial model holds exactly the job's tensors: a stream may not carry more.
  rpc::StreamLimits InitUploadLimits() const;
  [[nodiscard]] absl::Status ReportTask(const v1::ReportTaskRequest& request, const std::string& site);
  [[nodiscard]] absl::StatusOr<v1::SecAggStepResponse> SecAggStep(const v1::SecAggStepRequest& request,
                                                                   const std::string& site);

 private:
  struct SiteSlot {
    std::string name;
    std::string nonce;
    secagg::SiteId secagg_id = 0;
    std::string status = "selected";
    std::string reason;
    std::optional<v1::TrainReport> report;
    bool uploading = false;
    std::optional<secagg::NeighbourKeys> neighbour_keys;
    std::optional<secagg::SharesForSite> shares;
    bool sent_shares = false;
    bool masked = false;
    bool unmasked = false;
    bool dropped = false;  // left the round (refused, failed, or missed a deadline)
    std::optional<v1::Task> task;  // as handed out, for RedeliverIfLost
  };
  enum class Phase { kIdle, kInit, kTraining, kShareKeys, kMaskedInput, kUnmask, kAggregating };

  JobRunner(JobContext context, JobRecord job, models::JobSpec spec, models::ModelSpec model_spec);
  void Main();
  absl::Status RunJob();
  absl::Status EnsureInitialModel();
  absl::Status FinishInitialCommit();
  absl::StatusOr<bool> RunRound(int64_t round);  // false: not enough sites, try again
  absl::Status LoadCommitted(int64_t round);
  absl::Status Commit(int64_t round, const strategy::RoundSummary& summary);
  // Why `site`'s logged budget cannot afford `round` of this job (logged as site_skipped), or
  // nullopt when it can or nothing is known.
  absl::StatusOr<std::optional<std::string>> BudgetRefusal(const std::string& site, int64_t round);
  // Appends an audit event; a failure is logged, not returned (for events after the fact).
  void LogEvent(absl::string_view type, nlohmann::json data);
  absl::Status LogRoundCommitted(int64_t round, const std::string& model_sha256);
  absl::StatusOr<std::vector<std::string>> SelectSites(int64_t round);
  v1::Task MakeTask(const std::string& kind, int64_t round, const SiteSlot& slot, absl::Time deadline,
                    const v1::SecAggRound* secagg) const;
  absl::Status RunSecAgg(int64_t round, strategy::Strategy& strategy);
  // Waits until `done()` (under mu_) or the deadline or cancellation; true if done() held.
  bool WaitUntil(absl::Time deadline, const std::function<bool()>& done) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RecordSite(int64_t round, const SiteSlot& slot);
  absl::Status CheckRoundLocked(const v1::RoundRef& ref, const std::string& site)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::filesystem::path JobDir() const;

  JobContext context_;
  JobRecord job_;
  models::JobSpec spec_;
  models::ModelSpec model_spec_;
  std::unique_ptr<strategy::Strategy> strategy_;

  mutable absl::Mutex mu_;
  absl::CondVar cv_;  // signalled on every change a waiter may be waiting for
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kIdle;
  int64_t round_ ABSL_GUARDED_BY(mu_) = -1;
  std::map<std::string, SiteSlot> slots_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<secagg::SecAggServer> secagg_ ABSL_GUARDED_BY(mu_);
  std::optional<secagg::UnmaskRequest> unmask_request_ ABSL_GUARDED_BY(mu_);
  bool secagg_done_ ABSL_GUARDED_BY(mu_) = false;
  double weight_scale_ ABSL_GUARDED_BY(mu_) = 1;
  std::optional<std::vector<TensorBuffer>> init_tensors_ ABSL_GUARDED_BY(mu_);
  strategy::Strategy* open_strategy_ ABSL_GUARDED_BY(mu_) = nullptr;  // accepts uploads this round
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  // The global model: replaced only between rounds, under model_mu_ held exclusively.
  mutable absl::Mutex model_mu_;
  GlobalModel model_ ABSL_GUARDED_BY(model_mu_);
  std::atomic<uint64_t> model_version_{0};

  std::atomic<bool> finished_{false};
  std::thread thread_;
};

}  // namespace fedattn::coordinator
