#include "fedattn/simulation/simulation.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "admin_client.h"
#include "job_command.h"
#include "nlohmann/json.hpp"
#include "fedattn/agent/agent.h"
#include "fedattn/agent/coordinator_link.h"
#include "fedattn/agent/round_tasks.h"
#include "fedattn/agent/site_ledger.h"
#include "fedattn/common/clock.h"
#include "fedattn/common/files.h"
#include "fedattn/common/logging.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/coordinator/coordinator_server.h"
#include "fedattn/coordinator/federation_config.h"
#include "fedattn/coordinator/provision.h"
#include "fedattn/models/job_spec.h"

namespace fedattn::simulation {
namespace {

constexpr char kCoordinator[] = "coordinator";
constexpr char kAdmin[] = "simulator";

rpc::TlsFiles KitFiles(const std::filesystem::path& federation, const std::string& party) {
  const std::filesystem::path kit = federation / "kits" / party;
  return rpc::TlsFiles{kit / "ca.crt", kit / (party + ".crt"), kit / (party + ".key"), {}};
}

// The resolved job with local.threads replaced (threads 0 keeps the job's value).
absl::StatusOr<std::string> WithThreads(const std::string& text, int64_t threads) {
  if (threads == 0) return text;
  try {
    YAML::Node root = YAML::Load(text);
    root["job"]["local"]["threads"] = threads;
    YAML::Emitter out;
    out << root;
    return std::string(out.c_str());
  } catch (const YAML::Exception& e) {
    return absl::InternalError(absl::StrCat("setting job.local.threads: ", e.what()));
  }
}

// One virtual site: the same objects RunAgent in agent_main.cc wires, on a thread of its own.
struct Site {
  agent::AgentOptions options;
  rpc::TlsIdentity identity;
  std::unique_ptr<agent::GrpcCoordinatorLink> link;
  std::unique_ptr<agent::SiteLedger> ledger;
  std::unique_ptr<agent::RoundTasks> rounds;
  std::unique_ptr<agent::Agent> agent;
  std::thread thread;
  absl::Status exit;
};

absl::StatusOr<std::unique_ptr<Site>> StartSite(const std::string& name, const std::filesystem::path& federation,
                                                const std::filesystem::path& data, const std::string& address,
                                                const SimulationOptions& options, const std::filesystem::path& out) {
  auto site = std::make_unique<Site>();
  site->options.site_name = name;
  site->options.state_dir = out / "sites" / name;
  site->options.coordinator = rpc::CoordinatorEndpoint{address, kCoordinator};
  site->options.tls = KitFiles(federation, name);
  // Short waits, as in the integration tests: a simulated round should not idle.
  site->options.initial_backoff_ms = 100;
  site->options.max_backoff_ms = 1000;
  site->options.pull_wait_ms = 1000;
  // The simulator runs any job the operator hands it (DP or not); the cap is the experiment's.
  site->options.policy.require_sample_dp = false;
  site->options.policy.epsilon_max = options.epsilon_max;
  site->options.data.path = data;
  RETURN_IF_ERROR(site->options.Validate());
  ASSIGN_OR_RETURN(site->identity, rpc::LoadTlsIdentity(site->options.tls));
  RETURN_IF_ERROR(EnsureDirectory(site->options.state_dir, 0700));
  ASSIGN_OR_RETURN(agent::LedgerSigner signer, agent::SignerFor(site->identity.info.name, site->identity.info.fingerprint,
                                                                site->identity.key_pem.value()));
  ASSIGN_OR_RETURN(site->ledger, agent::SiteLedger::Open(site->options.state_dir / "ledger.db", RealClock::Get(),
                                                         std::move(signer)));
  site->link = std::make_unique<agent::GrpcCoordinatorLink>(&site->identity, site->options.coordinator);
  site->rounds =
      std::make_unique<agent::RoundTasks>(&site->options, &site->identity, site->link.get(), site->ledger.get());
  site->agent = std::make_unique<agent::Agent>(site->options, site->link.get());
  agent::RoundTasks* rounds = site->rounds.get();
  site->agent->SetTaskHandler("init", [rounds](const v1::Task& task) { return rounds->HandleInit(task); });
  site->agent->SetTaskHandler("train", [rounds](const v1::Task& task) { return rounds->HandleTrain(task); });
  Site* raw = site.get();
  site->thread = std::thread([raw] { raw->exit = raw->agent->Run(); });
  return site;
}

// Stops the agents (each waits for its running task), then the coordinator.
class Federation {
 public:
  ~Federation() { Stop(); }
  void Stop() {
    for (auto& site : sites) {
      if (site->agent) site->agent->Stop();
    }
    for (auto& site : sites) {
      if (site->thread.joinable()) site->thread.join();
    }
    if (coordinator) coordinator->Shutdown();
  }
  std::unique_ptr<coordinator::CoordinatorServer> coordinator;
  std::vector<std::unique_ptr<Site>> sites;
};

bool Ended(const std::string& state) { return state == "completed" || state == "failed" || state == "cancelled"; }
bool RoundEnded(const std::string& state) { return state == "committed" || state == "failed"; }

std::string FormatEpsilon(double epsilon) {
  if (std::isinf(epsilon)) return "inf";
  return absl::StrFormat("%.4f", epsilon);
}

}  // namespace

absl::Status SimulationOptions::Validate() const {
  if (job.empty()) return absl::InvalidArgumentError("--job is required");
  if (data.empty()) return absl::InvalidArgumentError("--data is required");
  if (sites < 1) return absl::InvalidArgumentError(absl::StrCat("--sites must be >= 1, not ", sites));
  if (out.empty()) return absl::InvalidArgumentError("--out (the work directory) is required");
  if (!(epsilon_max > 0)) return absl::InvalidArgumentError(absl::StrCat("--epsilon-max must be > 0, not ", epsilon_max));
  if (threads_per_site < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--threads-per-site must be >= 0, not ", threads_per_site));
  }
  if (timeout <= absl::ZeroDuration()) return absl::InvalidArgumentError("--timeout must be > 0");
  return absl::OkStatus();
}

std::string DescribeRound(const v1::RoundInfo& round) {
  int contributed = 0;
  for (const v1::RoundSiteInfo& site : round.sites()) contributed += site.status() == "contributed" ? 1 : 0;
  std::string line = absl::StrCat("round ", round.round(), " ", round.state(), ": ", contributed, "/",
                                  round.sites_size(), " sites contributed");
  // Sorted, so lines are stable (the proto map has no order).
  const std::map<std::string, double> metrics(round.validation_metrics().begin(), round.validation_metrics().end());
  for (const auto& [name, value] : metrics) absl::StrAppend(&line, "; ", name, " ", absl::StrFormat("%.4f", value));
  if (!round.error().empty()) absl::StrAppend(&line, " (", round.error(), ")");
  return line;
}

absl::StatusOr<SimulationResult> RunSimulation(const SimulationOptions& options, const RoundCallback& on_round) {
  RETURN_IF_ERROR(options.Validate());
  ASSIGN_OR_RETURN(std::string resolved, models::ResolveJobFile(options.job));
  ASSIGN_OR_RETURN(resolved, WithThreads(resolved, options.threads_per_site));
  ASSIGN_OR_RETURN(models::JobSpec spec, models::ParseJobSpec(resolved, options.job.string()));
  if (spec.sites.min_sites > options.sites) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.job.string(), ": job.sites.min_sites is ", spec.sites.min_sites, " but the simulation has only ",
        options.sites, " site(s): no round could ever commit. Use --sites ", spec.sites.min_sites,
        " or more, or lower sites.min_sites in the job file"));
  }
  std::error_code ec;
  if (std::filesystem::exists(options.out, ec) && !std::filesystem::is_empty(options.out, ec)) {
    return absl::InvalidArgumentError(absl::StrCat("--out ", options.out.string(),
                                                   " is not empty (the simulation provisions a new CA there)"));
  }
  RETURN_IF_ERROR(EnsureDirectory(options.out, 0700));

  std::vector<std::string> names;
  for (int i = 1; i <= options.sites; ++i) names.push_back(absl::StrCat("site-", i));
  const std::filesystem::path federation_dir = options.out / "federation";
  coordinator::FederationConfig federation_config;
  federation_config.name = "simulation";
  federation_config.coordinator.name = kCoordinator;
  federation_config.coordinator.listen = "127.0.0.1:0";
  federation_config.coordinator.address = "127.0.0.1:0";
  federation_config.sites = names;
  federation_config.admins = {kAdmin};
  RETURN_IF_ERROR(coordinator::Provision(federation_config, federation_dir, absl::Now()));

  agent::DataSplitOptions split;
  split.mode = options.split;
  split.sites = names;
  split.label_column = options.label_column;
  split.group_column = options.group_column;
  split.alpha = options.alpha;
  split.seed = options.seed;
  ASSIGN_OR_RETURN(agent::DataSplitResult shares, agent::SplitCsvFile(options.data, options.out / "data", split));

  Federation federation;
  coordinator::CoordinatorOptions coordinator_options;
  coordinator_options.name = kCoordinator;
  coordinator_options.listen = "127.0.0.1:0";
  coordinator_options.state_dir = options.out / "coordinator";
  coordinator_options.heartbeat_interval_ms = 300;
  // Sites heartbeat from their own thread while they train; a wide window keeps a site that
  // shares the CPUs with N-1 others from being counted offline.
  coordinator_options.online_window_ms = 10000;
  coordinator_options.tls = KitFiles(federation_dir, kCoordinator);
  RETURN_IF_ERROR(EnsureDirectory(coordinator_options.state_dir, 0700));
  ASSIGN_OR_RETURN(federation.coordinator,
                   coordinator::CoordinatorServer::Start(coordinator_options, RealClock::Get()));
  const std::string address = absl::StrCat("127.0.0.1:", federation.coordinator->port());

  for (size_t i = 0; i < names.size(); ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<Site> site,
                     StartSite(names[i], federation_dir, shares.sites[i].file, address, options, options.out));
    federation.sites.push_back(std::move(site));
  }

  cli::AdminOptions admin_options{kAdmin, rpc::CoordinatorEndpoint{address, kCoordinator},
                                  KitFiles(federation_dir, kAdmin)};
  ASSIGN_OR_RETURN(std::unique_ptr<cli::AdminClient> admin, cli::AdminClient::Create(admin_options));
  // Every site online before the job starts, so that round 1 samples from all of them.
  const absl::Time online_deadline = absl::Now() + absl::Seconds(60);
  for (;;) {
    ASSIGN_OR_RETURN(v1::GetStatusResponse status, admin->GetStatus());
    if (status.sites_online() >= static_cast<uint32_t>(options.sites)) break;
    if (absl::Now() > online_deadline) {
      return absl::UnavailableError(absl::StrCat("only ", status.sites_online(), " of ", options.sites,
                                                 " sites came online within 60 s (run with --log-level info)"));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }

  ASSIGN_OR_RETURN(std::string job_id, admin->SubmitJob(resolved));
  spdlog::info("submitted {} as job {}", options.job.string(), job_id);
  const absl::Time deadline = absl::Now() + options.timeout;
  size_t reported = 0;  // rounds of round_history passed to on_round
  v1::JobInfo info;
  bool cancelled = false;
  for (;;) {
    ASSIGN_OR_RETURN(info, admin->GetJob(job_id));
    while (reported < static_cast<size_t>(info.round_history_size()) &&
           RoundEnded(info.round_history(static_cast<int>(reported)).state())) {
      if (on_round) on_round(info.round_history(static_cast<int>(reported)));
      ++reported;
    }
    if (Ended(info.state())) break;
    if (!cancelled && absl::Now() > deadline) {
      spdlog::warn("job {} still {} after {}; cancelling it", job_id, info.state(), absl::FormatDuration(options.timeout));
      RETURN_IF_ERROR(admin->CancelJob(job_id).status());
      cancelled = true;
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  federation.Stop();

  SimulationResult result;
  result.job = info;
  result.threads_per_site = options.threads_per_site != 0 ? options.threads_per_site : spec.local.threads;
  result.delta = spec.sample_dp.enabled ? spec.sample_dp.delta : federation.sites.front()->options.policy.delta;
  for (size_t i = 0; i < federation.sites.size(); ++i) {
    const Site& site = *federation.sites[i];
    SiteOutcome outcome;
    outcome.name = site.options.site_name;
    outcome.rows = static_cast<int64_t>(shares.sites[i].rows.size());
    ASSIGN_OR_RETURN(agent::LedgerSummary summary, site.ledger->Summary(result.delta));
    int64_t releases = 0;
    for (const agent::LedgerSummary::Job& job : summary.jobs) {
      releases += job.releases;
      if (job.job_id != job_id) continue;
      outcome.releases = job.releases;
      outcome.refusals = job.refusals;
      outcome.epsilon_job = job.epsilon;
    }
    // Nothing released, nothing spent (the ledger's summary of an empty history is the RDP
    // conversion's floor, about 0.0035 at delta 1e-5, not 0).
    outcome.epsilon_total = releases == 0 ? 0.0 : summary.epsilon_total;
    result.sites.push_back(outcome);
  }
  return result;
}

void PrintReport(const SimulationResult& result, std::ostream& out) {
  const v1::JobInfo& job = result.job;
  out << "job " << job.name() << " (" << job.job_id() << "): " << job.state() << ", " << job.committed_rounds() << "/"
      << job.rounds() << " rounds committed, " << result.sites.size() << " sites, " << result.threads_per_site
      << " thread(s) per site\n";
  if (!job.error().empty()) out << "error: " << job.error() << "\n";

  // The round table: every validation metric any round reported, in name order.
  std::set<std::string> metrics;
  for (const v1::RoundInfo& round : job.round_history()) {
    for (const auto& [name, value] : round.validation_metrics()) metrics.insert(name);
  }
  out << "\n" << std::left << std::setw(7) << "round" << std::setw(11) << "state" << std::setw(13) << "contributed";
  for (const std::string& name : metrics) out << std::setw(std::max<int>(10, static_cast<int>(name.size()) + 2)) << name;
  out << "\n";
  for (const v1::RoundInfo& round : job.round_history()) {
    if (round.round() == 0) continue;  // the initial model
    int contributed = 0;
    for (const v1::RoundSiteInfo& site : round.sites()) contributed += site.status() == "contributed" ? 1 : 0;
    out << std::setw(7) << round.round() << std::setw(11) << round.state() << std::setw(13)
        << absl::StrCat(contributed, "/", round.sites_size());
    for (const std::string& name : metrics) {
      const auto it = round.validation_metrics().find(name);
      out << std::setw(std::max<int>(10, static_cast<int>(name.size()) + 2))
          << (it == round.validation_metrics().end() ? std::string("-") : absl::StrFormat("%.4f", it->second));
    }
    out << "\n";
  }

  out << "\n" << std::setw(10) << "site" << std::setw(7) << "rows" << std::setw(10) << "releases" << std::setw(10)
      << "refusals" << std::setw(13) << "epsilon(job)" << "epsilon(site total), delta=" << result.delta << "\n";
  for (const SiteOutcome& site : result.sites) {
    out << std::setw(10) << site.name << std::setw(7) << site.rows << std::setw(10) << site.releases << std::setw(10)
        << site.refusals << std::setw(13) << FormatEpsilon(site.epsilon_job) << FormatEpsilon(site.epsilon_total)
        << "\n";
  }
  out << std::right;
}

std::string ReportToJson(const SimulationResult& result) {
  // JSON has no infinity: an unbounded epsilon (no sample-level DP) is null.
  auto epsilon = [](double value) { return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr); };
  nlohmann::json sites = nlohmann::json::array();
  for (const SiteOutcome& site : result.sites) {
    sites.push_back({{"name", site.name},
                     {"rows", site.rows},
                     {"releases", site.releases},
                     {"refusals", site.refusals},
                     {"epsilon_job", epsilon(site.epsilon_job)},
                     {"epsilon_total", epsilon(site.epsilon_total)}});
  }
  const nlohmann::json report = {{"job", nlohmann::json::parse(cli::ToJson(result.job))},
                                 {"sites", sites},
                                 {"delta", result.delta},
                                 {"threads_per_site", result.threads_per_site}};
  return report.dump(2) + "\n";
}

}  // namespace fedattn::simulation
