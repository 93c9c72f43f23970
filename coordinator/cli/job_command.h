// `fedattn job` and `fedattn model`: the operator's view of training jobs (docs/operations.md,
// "Jobs"; the job file format is docs/jobs.md).
//
//   fedattn job submit JOB.yaml       resolve the job file (referenced files inlined), submit it,
//                                     print the new job's id on stdout
//   fedattn job status [JOB] [--json] every job as a table, or one job with its rounds and the
//                                     privacy each site has spent
//   fedattn job wait JOB [--timeout S] [--interval S] [--progress auto|bar|lines|off]
//                                     follow a job, one line per committed round, until it ends;
//                                     the round in flight on stderr (a bar on a terminal)
//   fedattn job cancel JOB
//   fedattn model export JOB [--round N] -o model.safetensors
//                                     write a committed global model (latest by default)
//
// Each takes --admin-config admin.yaml (alias --config; or FEDATTN_ADMIN_CONFIG) and
// --coordinator host:port as `fedattn status` does. Exit codes: 0 success, 1 error (the message
// names the job, file or field); `job wait` exits 0 when the job completed, 1 when it failed or
// was cancelled, 2 on timeout, 3 when it cannot follow the job (unknown job, refused call). A
// coordinator that is unreachable for a while does not end `job wait`: it keeps polling until
// its timeout (so it survives a coordinator restart).
#pragma once

#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "admin_client.h"
#include "fedattn/common/clock.h"
#include "fedattn/v1/fedattn.pb.h"

namespace fedattn::cli {

inline constexpr int kWaitCompleted = 0;
inline constexpr int kWaitJobFailed = 1;  // failed or cancelled
inline constexpr int kWaitTimedOut = 2;
inline constexpr int kWaitCannotFollow = 3;

// How the commands reach the coordinator and the outside world. The defaults are the real ones
// (AdminClient from the admin kit, std::cout/std::cerr, the wall clock, absl::SleepFor); tests
// replace them.
struct JobCommandEnv {
  std::function<absl::StatusOr<std::unique_ptr<JobAdmin>>(const std::string& admin_config,
                                                          const std::string& coordinator)>
      connect;
  std::ostream* out = &std::cout;
  std::ostream* err = &std::cerr;
  const Clock* clock = nullptr;
  std::function<void(absl::Duration)> sleep;
};

// Registers `job` and `model` with their subcommands. Errors end the command with
// CLI::RuntimeError(exit code) after writing the reason to env.err.
void AddJobCommands(CLI::App& app, JobCommandEnv env = {});

// Pieces of the commands, exposed for tests.

// Resolves `job_file` (models::ResolveJobFile) and submits it; the job's id.
[[nodiscard]] absl::StatusOr<std::string> SubmitJobFile(JobAdmin& admin, const std::filesystem::path& job_file);

// `job status` tables. Times are UTC.
std::string FormatJobList(const v1::ListJobsResponse& jobs);
std::string FormatJobDetail(const v1::JobInfo& job);
// Protobuf's JSON mapping with the proto's field names and every field present.
std::string ToJson(const google::protobuf::Message& message);

// One line for a round that ended (committed or failed), as `job wait` prints it.
std::string FormatRoundLine(const v1::JobInfo& job, const v1::RoundInfo& round);
// The progress of a round in flight: "round 2/10 training: 1/3 sites trained, 1 refused".
std::string FormatRoundProgress(const v1::JobInfo& job, const v1::RoundInfo& round);

// How `job wait` shows the round in flight (on `err`, so `out` keeps one line per round).
enum class WaitProgress {
  kNone,
  kLines,  // a line whenever the round in flight changes state or a site finishes (logs, pipes)
  kBar,    // one status line redrawn in place with the elapsed time (a terminal)
};

struct WaitOptions {
  absl::Duration timeout = absl::InfiniteDuration();  // seconds; default: wait for ever
  absl::Duration interval = absl::Seconds(2);         // between polls
  WaitProgress progress = WaitProgress::kNone;
};
// Polls GetJob until the job ends; returns a kWait* exit code. Round lines go to `out`, the
// final verdict of a failed, cancelled or timed-out job, unreachable-coordinator notes and the
// progress of the round in flight (options.progress) to `err`.
int WaitForJob(JobAdmin& admin, const std::string& job_id, const WaitOptions& options, const Clock& clock,
               const std::function<void(absl::Duration)>& sleep, std::ostream& out, std::ostream& err);

struct ExportedModel {
  uint64_t round = 0;
  uint32_t tensors = 0;
  uint64_t bytes = 0;  // tensor data
};
// Streams the model of `round` (unset: the latest committed; 0 is the initial model) into a safetensors file written
// atomically at `path`: nothing is written unless every tensor arrived whole with a matching
// SHA-256 and the model hash (ModelDigest) matches the round's committed model_sha256 (DATA_LOSS
// otherwise). The file's metadata names the job, the round and the model hash. The model
// is held in memory while it arrives (twice its size at the moment of writing).
[[nodiscard]] absl::StatusOr<ExportedModel> ExportJobModel(JobAdmin& admin, const std::string& job_id,
                                                           std::optional<uint64_t> round,
                                                           const std::filesystem::path& path);

}  // namespace fedattn::cli
