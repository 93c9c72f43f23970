#include "fedattn/coordinator/job_manager.h"

#include "absl/strings/str_cat.h"
#include "fedattn/common/failpoint.h"
#include "fedattn/common/logging.h"
#include "fedattn/audit/audit_log.h"
#include "fedattn/audit/ledger_entry.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/models/job_spec.h"

namespace fedattn::coordinator {

void JobManager::LogJobFinished(const std::string& job_id, const std::string& state, const std::string& error) {
  if (context_.audit == nullptr) return;
  const absl::Status logged =
      context_.audit->Append("job_finished", {{"job", job_id}, {"state", state}, {"error", error}}).status();
  if (!logged.ok()) {
    spdlog::error("job '{}': cannot write 'job_finished' to the audit log: {}", job_id, logged.message());
  }
}

absl::Status JobManager::StartRunner(const JobRecord& job) {
  absl::StatusOr<std::unique_ptr<JobRunner>> runner = JobRunner::Start(context_, job);
  if (!runner.ok()) {
    const std::string error(runner.status().message());
    spdlog::error("job '{}' cannot run: {}", job.id, error);
    RETURN_IF_ERROR(context_.store->SetJobState(job.id, "failed", error, context_.clock->Now()));
    LogJobFinished(job.id, "failed", error);
    return runner.status();
  }
  runners_[job.id] = std::shared_ptr<JobRunner>(std::move(*runner));
  return absl::OkStatus();
}

absl::Status JobManager::ResumeJobs() {
  ASSIGN_OR_RETURN(std::vector<JobRecord> jobs, context_.store->ListJobs());
  absl::MutexLock lock(&mu_);
  for (const JobRecord& job : jobs) {
    if (job.Finished()) {
      // Stopped between the job's end in the store and its job_finished record, or before the
      // last commit's pruning.
      if (context_.audit != nullptr && context_.audit->HasJobSubmitted(job.id) &&
          !context_.audit->HasJobFinished(job.id)) {
        spdlog::info("job '{}' ended ({}) without its job_finished record; logging it now", job.id, job.state);
        LogJobFinished(job.id, job.state, job.error);
      }
      if (absl::StatusOr<models::JobSpec> spec = models::ParseJobSpec(job.config, job.id); spec.ok()) {
        JobRunner::PruneRoundFiles(context_.options->state_dir / "jobs" / job.id, job.committed_rounds,
                                   spec->checkpoint_every);
      }
      continue;
    }
    if (context_.audit != nullptr && !context_.audit->HasJobSubmitted(job.id)) {
      // Stopped between recording the job and logging job_submitted: the operator was never
      // given its id, and a job the log does not know must not run.
      const std::string error =
          "the coordinator stopped before the submission reached the audit log; submit the job again";
      spdlog::warn("job '{}' not resumed: {}", job.id, error);
      RETURN_IF_ERROR(context_.store->SetJobState(job.id, "failed", error, context_.clock->Now()));
      continue;
    }
    spdlog::info("resuming job '{}' ({} of {} rounds committed)", job.id, job.committed_rounds, job.rounds);
    (void)StartRunner(job);  // a job that cannot start is marked failed, the others go on
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> JobManager::Submit(const std::string& config, const std::string& submitted_by) {
  ASSIGN_OR_RETURN(models::JobSpec spec, models::ParseJobSpec(config, "submitted job"));
  if (!spec.model.pretrained().empty()) {
    return absl::UnimplementedError(
        "federated jobs from a pretrained model are not supported yet; use a model config");
  }
  RETURN_IF_ERROR(models::BuildModelSpec(spec.model).status());
  ASSIGN_OR_RETURN(std::string id, context_.store->CreateJob(spec.name, config, spec.rounds, submitted_by,
                                                             context_.clock->Now()));
  Failpoint("coordinator.after_job_created");
  ASSIGN_OR_RETURN(JobRecord job, context_.store->GetJob(id));
  if (context_.audit != nullptr) {
    // Logged, under a signed checkpoint, before the job can run: the log never holds a round of
    // a job it does not know, and the submission is what an insider would deny.
    absl::Status logged = context_.audit
                              ->Append("job_submitted", {{"job", id},
                                                         {"name", spec.name},
                                                         {"by", submitted_by},
                                                         {"rounds", spec.rounds},
                                                         {"config_sha256", audit::Sha256Hex(config)}})
                              .status();
    if (logged.ok()) logged = context_.audit->Checkpoint();
    if (!logged.ok()) {
      const std::string error = absl::StrCat("cannot write job_submitted to the audit log: ", logged.message());
      RETURN_IF_ERROR(context_.store->SetJobState(id, "failed", error, context_.clock->Now()));
      return absl::Status(logged.code(), error);
    }
  }
  spdlog::info("job '{}' submitted by '{}': {} round(s), strategy {}, {}", id, submitted_by, spec.rounds,
               spec.strategy.name, models::DescribePrivacy(spec));
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(StartRunner(job));
  return id;
}

absl::Status JobManager::Cancel(const std::string& job_id) {
  ASSIGN_OR_RETURN(JobRecord job, context_.store->GetJob(job_id));
  if (job.Finished()) {
    return absl::FailedPreconditionError(absl::StrCat("job '", job_id, "' is already ", job.state));
  }
  absl::MutexLock lock(&mu_);
  const auto it = runners_.find(job_id);
  if (it == runners_.end() || it->second->finished()) {
    RETURN_IF_ERROR(
        context_.store->SetJobState(job_id, "cancelled", "cancelled by an operator", context_.clock->Now()));
    LogJobFinished(job_id, "cancelled", "");
    return absl::OkStatus();
  }
  it->second->Cancel();
  return absl::OkStatus();
}

void JobManager::SiteIdle(const std::string& site) {
  std::vector<std::shared_ptr<JobRunner>> runners;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, runner] : runners_) {
      if (!runner->finished()) runners.push_back(runner);
    }
  }
  for (const std::shared_ptr<JobRunner>& runner : runners) runner->RedeliverIfLost(site);
}

absl::StatusOr<std::shared_ptr<JobRunner>> JobManager::Running(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  const auto it = runners_.find(job_id);
  if (it == runners_.end()) {
    RETURN_IF_ERROR(context_.store->GetJob(job_id).status());
    return absl::FailedPreconditionError(absl::StrCat("job '", job_id, "' is not running"));
  }
  if (it->second->finished()) return absl::FailedPreconditionError(absl::StrCat("job '", job_id, "' has ended"));
  return it->second;
}

void JobManager::Shutdown() {
  std::map<std::string, std::shared_ptr<JobRunner>> runners;
  {
    absl::MutexLock lock(&mu_);
    runners.swap(runners_);
  }
  runners.clear();  // each destructor stops and joins its thread
}

}  // namespace fedattn::coordinator
