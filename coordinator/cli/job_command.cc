#include "job_command.h"

#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/models/job_spec.h"
#include "fedattn/rpc/tensor_stream.h"
#include "fedattn/tensor/model_digest.h"
#include "fedattn/tensor/safetensors.h"

namespace fedattn::cli {
namespace {

constexpr absl::string_view kCompleted = "completed";
constexpr absl::string_view kFailed = "failed";
constexpr absl::string_view kCancelled = "cancelled";
constexpr absl::string_view kCommitted = "committed";

std::string UtcTime(int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%SZ", absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}

// Metrics most operators look for first, then the rest by name.
std::string FormatMetrics(const google::protobuf::Map<std::string, double>& metrics) {
  static const std::vector<std::string> kFirst = {"accuracy", "macro_f1", "auc", "loss", "mse", "mae"};
  std::vector<std::string> names;
  for (const std::string& name : kFirst) {
    if (metrics.count(name)) names.push_back(name);
  }
  std::vector<std::string> rest;
  for (const auto& [name, value] : metrics) {
    if (std::find(kFirst.begin(), kFirst.end(), name) == kFirst.end()) rest.push_back(name);
  }
  std::sort(rest.begin(), rest.end());
  names.insert(names.end(), rest.begin(), rest.end());
  std::vector<std::string> parts;
  for (const std::string& name : names) parts.push_back(absl::StrFormat("%s=%.4g", name, metrics.at(name)));
  return absl::StrJoin(parts, " ");
}

int Contributed(const v1::RoundInfo& round) {
  int n = 0;
  for (const v1::RoundSiteInfo& site : round.sites()) n += site.status() == "contributed";
  return n;
}

// Sites that refused, failed or dropped, with their reasons.
std::vector<std::string> Problems(const v1::RoundInfo& round) {
  std::vector<std::string> out;
  for (const v1::RoundSiteInfo& site : round.sites()) {
    if (site.status() != "refused" && site.status() != "failed" && site.status() != "dropped") continue;
    out.push_back(site.reason().empty() ? absl::StrCat(site.site(), " ", site.status())
                                        : absl::StrCat(site.site(), " ", site.status(), ": ", site.reason()));
  }
  return out;
}

std::string Pad(std::string text, size_t width) {
  if (text.size() < width) text.resize(width, ' ');
  return text;
}

bool Transient(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable || status.code() == absl::StatusCode::kDeadlineExceeded;
}

[[noreturn]] void Fail(std::ostream& err, absl::string_view command, const absl::Status& status, int code = 1) {
  err << "fedattn " << command << ": " << status.message() << "\n";
  throw CLI::RuntimeError(code);
}

// Keeps the tensors as they arrive; the file is written only once the stream is whole.
class SafetensorsFileSink : public rpc::TensorSink {
 public:
  absl::Status BeginTensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                           uint64_t total_bytes) override {
    return tensors_.BeginTensor(name, dtype, shape, total_bytes);
  }
  absl::Status Data(uint64_t offset, std::span<const uint8_t> bytes) override { return tensors_.Data(offset, bytes); }
  absl::Status EndTensor() override { return tensors_.EndTensor(); }

  absl::Status Save(const std::filesystem::path& path, const std::map<std::string, std::string>& metadata) {
    return SaveSafetensors(path, tensors_.Take(), metadata);
  }

 private:
  rpc::CollectingSink tensors_;
};

}  // namespace

absl::StatusOr<std::string> SubmitJobFile(JobAdmin& admin, const std::filesystem::path& job_file) {
  ASSIGN_OR_RETURN(std::string yaml, models::ResolveJobFile(job_file));
  auto id = admin.SubmitJob(yaml);
  if (!id.ok()) {
    return absl::Status(id.status().code(),
                        absl::StrCat("submitting ", job_file.string(), ": ", id.status().message()));
  }
  return id;
}

std::string FormatJobList(const v1::ListJobsResponse& jobs) {
  if (jobs.jobs_size() == 0) return "no job has been submitted yet\n";
  size_t id_width = 3, name_width = 4;
  for (const v1::JobInfo& job : jobs.jobs()) {
    id_width = std::max(id_width, job.job_id().size());
    name_width = std::max(name_width, job.name().size());
  }
  std::string out;
  auto line = [&](const std::string& id, const std::string& name, const std::string& state, const std::string& rounds,
                  const std::string& submitted, const std::string& by) {
    out += absl::StrFormat("%s  %s  %-9s  %-7s  %-20s  %s\n", Pad(id, id_width), Pad(name, name_width), state, rounds,
                           submitted, by);
  };
  line("JOB", "NAME", "STATE", "ROUNDS", "SUBMITTED (UTC)", "BY");
  for (const v1::JobInfo& job : jobs.jobs()) {
    line(job.job_id(), job.name(), job.state(), absl::StrCat(job.committed_rounds(), "/", job.rounds()),
         UtcTime(job.submitted_unix_ms()), job.submitted_by());
  }
  return out;
}

std::string FormatJobDetail(const v1::JobInfo& job) {
  std::string out = absl::StrFormat("job %s '%s': %s, %d/%d rounds committed\n", job.job_id(), job.name(), job.state(),
                                    job.committed_rounds(), job.rounds());
  out += absl::StrCat("submitted ", UtcTime(job.submitted_unix_ms()),
                      job.submitted_by().empty() ? "" : absl::StrCat(" by ", job.submitted_by()), "\n");
  if (job.finished_unix_ms() > 0) out += absl::StrCat("finished  ", UtcTime(job.finished_unix_ms()), "\n");
  if (!job.error().empty()) out += absl::StrCat("error: ", job.error(), "\n");
  if (job.round_history_size() == 0) return out + "no round has started yet\n";

  size_t validation_width = 10;
  for (const v1::RoundInfo& round : job.round_history()) {
    validation_width = std::max(validation_width, FormatMetrics(round.validation_metrics()).size());
  }
  out += "\n";
  auto line = [&](const std::string& round, const std::string& state, const std::string& sites,
                  const std::string& validation, const std::string& train) {
    std::string text =
        absl::StrFormat("%-5s  %-12s  %-5s  %s  %s", round, state, sites, Pad(validation, validation_width), train);
    text.erase(text.find_last_not_of(' ') + 1);
    out += text + "\n";
  };
  line("ROUND", "STATE", "SITES", "VALIDATION", "TRAIN");
  for (const v1::RoundInfo& round : job.round_history()) {
    line(absl::StrCat(round.round()), round.state(), absl::StrCat(Contributed(round), "/", round.sites_size()),
         FormatMetrics(round.validation_metrics()), FormatMetrics(round.train_metrics()));
    if (!round.error().empty()) out += absl::StrCat("       round failed: ", round.error(), "\n");
    for (const std::string& problem : Problems(round)) out += absl::StrCat("       ", problem, "\n");
  }

  // The latest cumulative ε each site reported: cumulative values already compose every release.
  struct Spend {
    double epsilon = 0;
    uint64_t last_round = 0;
    int rounds = 0;
  };
  std::map<std::string, Spend> spent;
  for (const v1::RoundInfo& round : job.round_history()) {
    for (const v1::RoundSiteInfo& site : round.sites()) {
      Spend& s = spent[site.site()];
      if (site.epsilon_spent() > 0) ++s.rounds;
      if (site.epsilon_cumulative() > 0) {
        s.epsilon = site.epsilon_cumulative();
        s.last_round = round.round();
      }
    }
  }
  size_t site_width = 4;
  for (const auto& [site, s] : spent) site_width = std::max(site_width, site.size());
  out += "\nPRIVACY (latest cumulative epsilon each site reported)\n";
  out += absl::StrFormat("%s  %-8s  %-8s  %s\n", Pad("SITE", site_width), "EPSILON", "RELEASES", "AS OF ROUND");
  for (const auto& [site, s] : spent) {
    out += absl::StrFormat("%s  %-8s  %-8d  %s\n", Pad(site, site_width),
                           s.last_round == 0 ? "-" : absl::StrFormat("%.4g", s.epsilon), s.rounds,
                           s.last_round == 0 ? "-" : absl::StrCat(s.last_round));
  }
  return out;
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  // Cannot fail for a message of our own schema (no Any fields).
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

std::string FormatRoundLine(const v1::JobInfo& job, const v1::RoundInfo& round) {
  if (round.state() != kCommitted) {
    return absl::StrCat("round ", round.round(), " ", round.state(),
                        round.error().empty() ? "" : absl::StrCat(": ", round.error()));
  }
  std::string text = absl::StrCat("round ", round.round(), "/", job.rounds(), " committed:");
  if (!round.validation_metrics().empty()) {
    absl::StrAppend(&text, " validation ", FormatMetrics(round.validation_metrics()), ";");
  }
  if (!round.train_metrics().empty()) absl::StrAppend(&text, " train ", FormatMetrics(round.train_metrics()), ";");
  absl::StrAppend(&text, " sites ", Contributed(round), "/", round.sites_size(), " contributed");
  const std::vector<std::string> problems = Problems(round);
  if (!problems.empty()) absl::StrAppend(&text, " (", absl::StrJoin(problems, "; "), ")");
  return text;
}

std::string FormatRoundProgress(const v1::JobInfo& job, const v1::RoundInfo& round) {
  int done = 0;
  std::map<std::string, int> problems;
  for (const v1::RoundSiteInfo& site : round.sites()) {
    if (site.status() == "trained" || site.status() == "contributed") {
      ++done;
    } else if (site.status() == "refused" || site.status() == "failed" || site.status() == "dropped") {
      ++problems[site.status()];
    }
  }
  std::string text = round.round() == 0 ? absl::StrCat("round 0 (initial model) ", round.state())
                                        : absl::StrCat("round ", round.round(), "/", job.rounds(), " ", round.state());
  absl::StrAppend(&text, ": ", done, "/", round.sites_size(), " sites trained");
  for (const auto& [status, count] : problems) absl::StrAppend(&text, ", ", count, " ", status);
  return text;
}

int WaitForJob(JobAdmin& admin, const std::string& job_id, const WaitOptions& options, const Clock& clock,
               const std::function<void(absl::Duration)>& sleep, std::ostream& out, std::ostream& err) {
  const absl::Time deadline =
      options.timeout == absl::InfiniteDuration() ? absl::InfiniteFuture() : clock.Now() + options.timeout;
  // Rounds already reported, by (round, start time, state): a failed round that is retried under
  // the same number is reported again when it ends.
  std::set<std::tuple<uint64_t, int64_t, std::string>> reported;
  std::string last_unreachable;
  std::string last_progress;  // kLines: the last line printed; kBar: non-empty while a bar is shown
  auto clear_bar = [&] {
    if (options.progress == WaitProgress::kBar && !last_progress.empty()) err << "\r\x1b[K" << std::flush;
    if (options.progress == WaitProgress::kBar) last_progress.clear();
  };
  v1::JobInfo job;
  bool seen = false;
  while (true) {
    auto polled = admin.GetJob(job_id);
    if (polled.ok()) {
      job = *std::move(polled);
      seen = true;
      if (!last_unreachable.empty()) {
        clear_bar();
        err << "coordinator reachable again\n";
      }
      last_unreachable.clear();
      for (const v1::RoundInfo& round : job.round_history()) {
        if (round.state() != kCommitted && round.state() != kFailed) continue;
        if (reported.emplace(round.round(), round.started_unix_ms(), round.state()).second) {
          clear_bar();
          out << FormatRoundLine(job, round) << "\n" << std::flush;
        }
      }
      // The round in flight, if any: the latest one, not yet committed or failed.
      if (options.progress != WaitProgress::kNone && !job.round_history().empty() &&
          (job.state() == "running" || job.state() == "queued")) {
        const v1::RoundInfo& current = *job.round_history().rbegin();
        if (current.state() != kCommitted && current.state() != kFailed) {
          const std::string line = FormatRoundProgress(job, current);
          if (options.progress == WaitProgress::kBar) {
            const int64_t elapsed = std::max<int64_t>(0, absl::ToUnixSeconds(clock.Now()) - current.started_unix_ms() / 1000);
            err << "\r\x1b[K" << line << " (" << elapsed << "s)" << std::flush;
            last_progress = line;
          } else if (line != last_progress) {
            err << line << "\n" << std::flush;
            last_progress = line;
          }
        }
      }
      if (job.state() == kCompleted || job.state() == kFailed || job.state() == kCancelled) clear_bar();
      if (job.state() == kCompleted) {
        out << "job " << job_id << " completed: " << job.committed_rounds() << "/" << job.rounds()
            << " rounds committed\n";
        return kWaitCompleted;
      }
      if (job.state() == kFailed) {
        err << "job " << job_id << " failed after " << job.committed_rounds() << "/" << job.rounds()
            << " rounds: " << (job.error().empty() ? "no reason recorded" : job.error()) << "\n";
        return kWaitJobFailed;
      }
      if (job.state() == kCancelled) {
        err << "job " << job_id << " was cancelled after " << job.committed_rounds() << "/" << job.rounds() << " rounds"
            << (job.error().empty() ? "" : absl::StrCat(": ", job.error())) << "\n";
        return kWaitJobFailed;
      }
    } else if (Transient(polled.status())) {
      const std::string message(polled.status().message());
      if (message != last_unreachable) {
        clear_bar();
        err << "still waiting for job " << job_id << "; the coordinator is unreachable: " << message << "\n";
      }
      last_unreachable = message;
    } else {
      clear_bar();
      err << "fedattn job wait: job " << job_id << ": " << polled.status().message() << "\n";
      return kWaitCannotFollow;
    }
    const absl::Time now = clock.Now();
    if (now >= deadline) {
      clear_bar();
      err << "timed out after " << absl::FormatDuration(options.timeout) << " waiting for job " << job_id;
      if (seen)
        err << " (" << job.state() << ", " << job.committed_rounds() << "/" << job.rounds() << " rounds committed)";
      err << "\n";
      return kWaitTimedOut;
    }
    sleep(std::min(options.interval, deadline - now));
  }
}

absl::StatusOr<ExportedModel> ExportJobModel(JobAdmin& admin, const std::string& job_id,
                                             std::optional<uint64_t> round, const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(v1::JobInfo job, admin.GetJob(job_id));
  // Resolve the round here, so a round committed meanwhile cannot change what is exported.
  const v1::RoundInfo* chosen = nullptr;
  for (const v1::RoundInfo& info : job.round_history()) {
    if (info.state() != kCommitted) continue;
    if (!round.has_value() ? (chosen == nullptr || info.round() > chosen->round()) : info.round() == *round) {
      chosen = &info;
    }
  }
  if (chosen == nullptr) {
    if (!round.has_value()) {
      return absl::FailedPreconditionError(
          absl::StrCat("job ", job_id, " has no committed round yet (it is ", job.state(), ")"));
    }
    return absl::NotFoundError(absl::StrCat("job ", job_id, " has no committed round ", *round, " (",
                                            job.committed_rounds(), " of ", job.rounds(), " committed)"));
  }
  ExportedModel exported;
  exported.round = chosen->round();

  SafetensorsFileSink sink;
  rpc::TensorStreamReader reader(&sink, rpc::StreamLimits{});
  // The per-tensor hashes the reader has checked, for the model hash (common/tensor/model_digest.h).
  std::vector<std::pair<std::string, crypto::Sha256Digest>> digests;
  const absl::Status streamed =
      admin.ExportModel(job_id, exported.round, [&reader, &digests](const v1::TensorChunk& chunk) {
        RETURN_IF_ERROR(reader.Add(chunk));
        if (!chunk.sha256().empty()) {
          crypto::Sha256Digest digest;
          std::copy(chunk.sha256().begin(), chunk.sha256().end(), digest.begin());
          digests.emplace_back(chunk.name(), digest);
        }
        return absl::OkStatus();
      });
  absl::Status whole = streamed.ok() ? reader.Finish() : streamed;
  const std::string model_sha256 = crypto::ToHex(ModelDigest(digests));
  if (whole.ok() && !chosen->model_sha256().empty() && model_sha256 != chosen->model_sha256()) {
    whole = absl::DataLossError(absl::StrCat("the model received hashes to ", model_sha256,
                                             ", not to the round's committed model ", chosen->model_sha256()));
  }
  if (!whole.ok()) {
    return absl::Status(whole.code(), absl::StrCat("model of job ", job_id, " round ", exported.round, ": ",
                                                   whole.message(), " (nothing written to ", path.string(), ")"));
  }
  exported.tensors = reader.tensors_completed();
  exported.bytes = reader.total_bytes();
  std::map<std::string, std::string> metadata = {{"fedattn.job_id", job_id},
                                                 {"fedattn.round", absl::StrCat(exported.round)}};
  if (!job.name().empty()) metadata["fedattn.job_name"] = job.name();
  metadata["fedattn.model_sha256"] = model_sha256;
  RETURN_IF_ERROR(sink.Save(path, metadata));
  return exported;
}

void AddJobCommands(CLI::App& app, JobCommandEnv env) {
  if (!env.connect) {
    env.connect = [](const std::string& admin_config,
                     const std::string& coordinator) -> absl::StatusOr<std::unique_ptr<JobAdmin>> {
      ASSIGN_OR_RETURN(AdminOptions options, LoadAdminOptions(admin_config));
      if (!coordinator.empty()) options.coordinator.address = coordinator;
      ASSIGN_OR_RETURN(std::unique_ptr<AdminClient> client, AdminClient::Create(options));
      return std::unique_ptr<JobAdmin>(std::move(client));
    };
  }
  if (env.clock == nullptr) env.clock = RealClock::Get();
  if (!env.sleep) env.sleep = [](absl::Duration d) { absl::SleepFor(d); };

  struct Flags {
    std::string admin_config;
    std::string coordinator;
    std::string job_file;
    std::string job;
    bool json = false;
    double timeout_seconds = 0;
    double interval_seconds = 2;
    std::optional<uint64_t> round;  // unset: the latest committed round (0 is the initial model)
    std::string out;
    std::string progress = "auto";
  };
  auto flags = std::make_shared<Flags>();
  auto shared = std::make_shared<JobCommandEnv>(std::move(env));
  auto connection_flags = [flags](CLI::App* command) {
    command->add_option("--admin-config,--config", flags->admin_config, "The admin kit's admin.yaml")
        ->envname("FEDATTN_ADMIN_CONFIG")
        ->required()
        ->check(CLI::ExistingFile);
    command->add_option("--coordinator", flags->coordinator, "Dial this host:port instead of the kit's address");
  };
  // Connects, or ends the command naming the kit.
  auto connect = [flags, shared](absl::string_view command) {
    auto admin = shared->connect(flags->admin_config, flags->coordinator);
    if (!admin.ok()) Fail(*shared->err, command, admin.status());
    return std::move(admin).value();
  };

  CLI::App* job = app.add_subcommand("job", "Submit, follow and cancel training jobs (admin certificate)");
  job->require_subcommand(1);

  CLI::App* submit =
      job->add_subcommand("submit", "Submit a job file; prints the new job's id (exit 0, or 1 on error)");
  submit->add_option("JOB_FILE", flags->job_file, "The job YAML (docs/jobs.md)")->required()->check(CLI::ExistingFile);
  connection_flags(submit);
  submit->callback([flags, shared, connect] {
    auto admin = connect("job submit");  // loads the kit; dials only at the call
    auto id = SubmitJobFile(*admin, flags->job_file);
    if (!id.ok()) Fail(*shared->err, "job submit", id.status());
    *shared->out << *id << "\n";
    *shared->err << "submitted " << flags->job_file << " as job " << *id << "; follow it with: fedattn job wait " << *id
                 << "\n";
  });

  CLI::App* status =
      job->add_subcommand("status", "Every job, or one job's rounds and privacy spend (exit 0, or 1 on error)");
  status->add_option("JOB", flags->job, "A job id; without it, list every job");
  status->add_flag("--json", flags->json, "Print the coordinator's JobInfo (or job list) as JSON");
  connection_flags(status);
  status->callback([flags, shared, connect] {
    auto admin = connect("job status");
    if (flags->job.empty()) {
      auto jobs = admin->ListJobs();
      if (!jobs.ok()) Fail(*shared->err, "job status", jobs.status());
      *shared->out << (flags->json ? ToJson(*jobs) + "\n" : FormatJobList(*jobs));
      return;
    }
    auto info = admin->GetJob(flags->job);
    if (!info.ok()) {
      Fail(*shared->err, "job status",
           absl::Status(info.status().code(), absl::StrCat("job ", flags->job, ": ", info.status().message())));
    }
    *shared->out << (flags->json ? ToJson(*info) + "\n" : FormatJobDetail(*info));
  });

  CLI::App* wait = job->add_subcommand(
      "wait",
      "Follow a job until it ends, one line per committed round. Exit 0 completed, 1 failed or cancelled, "
      "2 timed out, 3 cannot follow the job");
  wait->add_option("JOB", flags->job, "The job id")->required();
  wait->add_option("--timeout", flags->timeout_seconds, "Give up after this many seconds (0: never)")
      ->check(CLI::NonNegativeNumber);
  wait->add_option("--interval", flags->interval_seconds, "Seconds between polls")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  wait->add_option("--progress", flags->progress,
                   "The round in flight on stderr: bar (redrawn in place), lines, off, or auto (bar on a terminal, "
                   "lines otherwise)")
      ->check(CLI::IsMember({"auto", "bar", "lines", "off"}))
      ->capture_default_str();
  connection_flags(wait);
  wait->callback([flags, shared] {
    auto admin = shared->connect(flags->admin_config, flags->coordinator);
    if (!admin.ok()) Fail(*shared->err, "job wait", admin.status(), kWaitCannotFollow);
    WaitOptions options;
    if (flags->timeout_seconds > 0) options.timeout = absl::Seconds(flags->timeout_seconds);
    options.interval = absl::Seconds(flags->interval_seconds);
    const bool terminal = shared->err == &std::cerr && ::isatty(STDERR_FILENO) == 1;
    options.progress = flags->progress == "bar"     ? WaitProgress::kBar
                       : flags->progress == "lines" ? WaitProgress::kLines
                       : flags->progress == "off"   ? WaitProgress::kNone
                       : terminal                   ? WaitProgress::kBar
                                                    : WaitProgress::kLines;
    const int code =
        WaitForJob(**admin, flags->job, options, *shared->clock, shared->sleep, *shared->out, *shared->err);
    if (code != kWaitCompleted) throw CLI::RuntimeError(code);
  });

  CLI::App* cancel = job->add_subcommand("cancel", "Cancel a job (exit 0, or 1 on error)");
  cancel->add_option("JOB", flags->job, "The job id")->required();
  connection_flags(cancel);
  cancel->callback([flags, shared, connect] {
    auto admin = connect("job cancel");
    auto info = admin->CancelJob(flags->job);
    if (!info.ok()) {
      Fail(*shared->err, "job cancel",
           absl::Status(info.status().code(), absl::StrCat("job ", flags->job, ": ", info.status().message())));
    }
    *shared->out << "job " << info->job_id() << " is " << info->state() << " after " << info->committed_rounds() << "/"
                 << info->rounds() << " rounds\n";
  });

  CLI::App* model = app.add_subcommand("model", "Work with the global models of jobs (admin certificate)");
  model->require_subcommand(1);
  CLI::App* export_command =
      model->add_subcommand("export", "Write a job's committed global model as safetensors (exit 0, or 1 on error)");
  export_command->add_option("JOB", flags->job, "The job id")->required();
  export_command->add_option("--round", flags->round, "A committed round, 0 being the initial model (default: the latest)");
  export_command->add_option("-o,--output", flags->out, "The safetensors file to write")->required();
  connection_flags(export_command);
  export_command->callback([flags, shared, connect] {
    auto admin = connect("model export");
    auto exported = ExportJobModel(*admin, flags->job, flags->round, flags->out);
    if (!exported.ok()) Fail(*shared->err, "model export", exported.status());
    *shared->out << absl::StrFormat("wrote %s: job %s round %d, %d tensors, %.1f MB\n", flags->out, flags->job,
                                    exported->round, exported->tensors, static_cast<double>(exported->bytes) / 1e6);
  });
}

}  // namespace fedattn::cli
