// The coordinator's jobs: accepts submissions, runs each job (JobRunner), resumes unfinished
// jobs after a restart, and routes the sites' round calls to the job they belong to.
//
// Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "fedattn/coordinator/job_runner.h"

namespace fedattn::coordinator {

class JobManager {
 public:
  explicit JobManager(JobContext context) : context_(context) {}
  ~JobManager() { Shutdown(); }

  // Starts a runner for every job left queued or running by the previous process, and completes
  // the audit log where that process stopped between a job's record and its log entry.
  [[nodiscard]] absl::Status ResumeJobs();
  // Validates the job (the same parser the sites use), records it and starts it.
  // INVALID_ARGUMENT listing the config's problems.
  [[nodiscard]] absl::StatusOr<std::string> Submit(const std::string& config, const std::string& submitted_by);
  // NOT_FOUND for an unknown job, FAILED_PRECONDITION for a finished one.
  [[nodiscard]] absl::Status Cancel(const std::string& job_id);
  // `site` reported itself idle: every running job hands it again a task it lost (see
  // JobRunner::RedeliverIfLost).
  void SiteIdle(const std::string& site);
  // The running job `job_id`; NOT_FOUND (unknown) or FAILED_PRECONDITION (not running).
  [[nodiscard]] absl::StatusOr<std::shared_ptr<JobRunner>> Running(const std::string& job_id);
  // The coordinator's audit log (null in tests of the round engine).
  audit::AuditLog* audit() const { return context_.audit; }
  // Stops every runner; their jobs stay as recorded and resume on the next start.
  void Shutdown();

 private:
  absl::Status StartRunner(const JobRecord& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Appends job_finished; a failed write is logged, the job's end in the store stands.
  void LogJobFinished(const std::string& job_id, const std::string& state, const std::string& error);

  JobContext context_;
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<JobRunner>> runners_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fedattn::coordinator
