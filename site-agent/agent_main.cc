// fedattn-agent: a site's agent. Dials out to the coordinator, trains on the site's data, and
// sends back protected updates.
//
//   fedattn-agent --config site.yaml            run the agent
//   mpirun -np N fedattn-agent --config site.yaml   the same on N ranks (GPUs): rank 0 is the agent,
//                                               the others train their share (docs/multi-gpu.md)
//   fedattn-agent check --config site.yaml      check the kit and the connection, then exit
//   fedattn-agent train --config train.yaml     train one model centrally (the baseline)
#include <string.h>
#include <unistd.h>

#include <iostream>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fedattn/agent/agent.h"
#include "fedattn/agent/agent_options.h"
#include "fedattn/agent/coordinator_link.h"
#include "fedattn/agent/round_tasks.h"
#include "fedattn/agent/site_collective.h"
#include "fedattn/agent/site_ledger.h"
#include "fedattn/agent/site_workers.h"
#include "fedattn/agent/training_progress.h"
#include "fedattn/common/files.h"
#include "fedattn/models/central_training.h"
#include "fedattn/common/logging.h"
#include "fedattn/common/stop_signal.h"
#include "fedattn/config.h"
#include "fedattn/rpc/grpc_logging.h"
#include "fedattn/rpc/connection_probe.h"
#include "audit_command.h"
#include "data_command.h"
#include "train_command.h"

namespace {

using fedattn::agent::AgentOptions;

// Loads site.yaml and the TLS identity, and checks they belong together.
absl::StatusOr<std::pair<AgentOptions, fedattn::rpc::TlsIdentity>> LoadSite(const std::string& config_path,
                                                                           const std::string& coordinator) {
  auto options = fedattn::agent::LoadAgentOptions(config_path);
  if (!options.ok()) return options.status();
  if (!coordinator.empty()) options->coordinator.address = coordinator;
  auto identity = fedattn::rpc::LoadTlsIdentity(options->tls);
  if (!identity.ok()) return identity.status();
  if (identity->info.role != fedattn::crypto::PartyRole::kSite) {
    return absl::InvalidArgumentError(absl::StrCat(options->tls.cert.string(), " is the certificate of ",
                                                   fedattn::crypto::RoleName(identity->info.role), " '",
                                                   identity->info.name, "', not of a site"));
  }
  if (identity->info.name != options->site_name) {
    return absl::InvalidArgumentError(absl::StrCat(config_path, ": site.name is '", options->site_name,
                                                   "' but the certificate ", options->tls.cert.string(),
                                                   " is for site '", identity->info.name, "'"));
  }
  if (identity->info.not_after < absl::Now()) {
    spdlog::warn("the site certificate {} expired on {}; the coordinator will refuse it",
                 options->tls.cert.string(), absl::FormatTime(identity->info.not_after));
  }
  return std::make_pair(*std::move(options), *std::move(identity));
}

int RunAgent(const std::string& config_path, const std::string& coordinator, double collective_timeout_s) {
  fedattn::models::EnsurePassiveOpenMpWait();
  // Under mpirun, rank 0 is the agent and the other ranks serve it (docs/multi-gpu.md).
  fedattn::agent::SiteCollectiveOptions parallel;
  parallel.device = "auto";
  parallel.timeout = absl::Seconds(collective_timeout_s);
  auto collective = fedattn::agent::CreateSiteCollective(parallel);
  if (!collective.ok()) {
    spdlog::error("{}", collective.status().message());
    return 2;
  }
  if ((*collective)->rank() > 0) {
    auto options = fedattn::agent::LoadAgentOptions(config_path);
    if (!options.ok()) {
      spdlog::error("rank {}: {}", (*collective)->rank(), options.status().message());
      return 2;
    }
    const absl::Status served = fedattn::agent::RunSiteWorker(**collective, *options);
    if (!served.ok()) spdlog::error("rank {}: {}", (*collective)->rank(), served.message());
    return served.ok() ? 0 : 1;
  }
  std::unique_ptr<fedattn::agent::SiteWorkers> workers;  // stops the other ranks on every return
  if ((*collective)->size() > 1) {
    workers = std::make_unique<fedattn::agent::SiteWorkers>(collective->get(), parallel.timeout / 4);
    spdlog::info("leader of {} ranks ({})", (*collective)->size(), (*collective)->backend());
  }
  auto site = LoadSite(config_path, coordinator);
  if (!site.ok()) {
    spdlog::error("{}", site.status().message());
    return 2;
  }
  fedattn::agent::GrpcCoordinatorLink link(&site->second, site->first.coordinator);
  if (absl::Status dir = fedattn::EnsureDirectory(site->first.state_dir, 0700); !dir.ok()) {
    spdlog::error("{}", dir.message());
    return 2;
  }
  auto signer = fedattn::agent::SignerFor(site->second.info.name, site->second.info.fingerprint,
                                          site->second.key_pem.value());
  if (!signer.ok()) {
    spdlog::error("cannot load the site's key to sign its ledger: {}", signer.status().message());
    return 2;
  }
  auto ledger = fedattn::agent::SiteLedger::Open(site->first.state_dir / "ledger.db", fedattn::RealClock::Get(),
                                                 *std::move(signer));
  if (!ledger.ok()) {
    spdlog::error("cannot open the site ledger: {}", ledger.status().message());
    return 2;
  }
  fedattn::agent::RoundTasks rounds(&site->first, &site->second, &link, ledger->get());
  rounds.set_workers(workers.get());
  // Local training: a progress bar on a terminal, a log line every 10 s otherwise.
  fedattn::agent::TrainingProgressPrinter progress(
      &std::cerr, fedattn::agent::TrainingProgressPrinter::IsTerminal(STDERR_FILENO), absl::Seconds(10),
      [](const std::string& line) { spdlog::info("training: {}", line); });
  rounds.set_training_progress([&progress](const fedattn::models::TrainProgress& p) { progress.Update(p); });
  fedattn::agent::Agent agent(site->first, &link, static_cast<uint32_t>((*collective)->size()));
  agent.SetTaskHandler("init", [&](const fedattn::v1::Task& task) { return rounds.HandleInit(task); });
  agent.SetTaskHandler("train", [&](const fedattn::v1::Task& task) {
    absl::Status status = rounds.HandleTrain(task);
    if ((*collective)->broken()) {
      // The task's failure is reported when this returns; without its ranks the site cannot train.
      spdlog::error("the site's ranks lost contact ({}); stopping: start mpirun again", status.message());
      agent.Stop();
    }
    return status;
  });
  const fedattn::StopSignalWatcher watcher([&](int signal) {
    spdlog::info("received {}, stopping", strsignal(signal));
    agent.Stop();
  });
  const absl::Status status = agent.Run();
  return status.ok() && !(*collective)->broken() ? 0 : 1;
}

int Check(const std::string& config_path, const std::string& coordinator) {
  auto site = LoadSite(config_path, coordinator);
  if (!site.ok()) {
    std::cerr << "config:      FAILED: " << site.status().message() << "\n";
    return 1;
  }
  const auto& [options, identity] = *site;
  std::cout << "config:      ok (" << config_path << ")\n";
  std::cout << "identity:    site '" << identity.info.name << "' of federation '" << identity.info.federation
            << "', certificate " << identity.info.fingerprint.substr(0, 16) << "…, valid until "
            << absl::FormatTime("%Y-%m-%d", identity.info.not_after, absl::UTCTimeZone()) << "\n";
  const absl::Status probe = fedattn::rpc::ProbeConnection(identity, options.coordinator.address, options.coordinator.name);
  if (!probe.ok()) {
    std::cerr << "connection:  FAILED: " << probe.message() << "\n";
    return 1;
  }
  std::cout << "connection:  ok (mutual TLS with '" << options.coordinator.name << "' at "
            << options.coordinator.address << ")\n";
  fedattn::agent::GrpcCoordinatorLink link(&identity, options.coordinator);
  fedattn::agent::Agent agent(options, &link);
  auto registered = agent.RegisterOnce();
  if (!registered.ok()) {
    std::cerr << "register:    FAILED: " << registered.status().message() << "\n";
    return 1;
  }
  std::cout << "register:    ok (coordinator FedAttn " << registered->coordinator_version() << ")\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("FedAttn site agent: trains on this site's data for the federation", "fedattn-agent");
  app.set_version_flag("--version", "fedattn-agent " FEDATTN_VERSION);
  std::string config_path, coordinator, log_level = "info";
  app.add_option("--config", config_path, "The site kit's site.yaml")->check(CLI::ExistingFile);
  app.add_option("--coordinator", coordinator, "Dial this host:port instead of the kit's address");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")->capture_default_str();
  double collective_timeout_s = 600;
  app.add_option("--collective-timeout", collective_timeout_s,
                 "Under mpirun: seconds a rank waits for the others in one operation before failing the task")
      ->envname("FEDATTN_COLLECTIVE_TIMEOUT")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);

  std::string check_config;
  CLI::App* check = app.add_subcommand("check", "Check the site kit and the connection to the coordinator");
  check->add_option("--config", check_config, "The site kit's site.yaml")->required()->check(CLI::ExistingFile);
  fedattn::agent::AddTrainCommand(app);
  fedattn::agent::AddDataCommand(app);
  fedattn::agent::AddAuditCommand(app);
  app.require_subcommand(0, 1);
  // Logging is set up before any subcommand's callback runs.
  app.parse_complete_callback([&] {
    const absl::Status status = fedattn::InitLogging("agent", log_level);
    if (!status.ok()) throw CLI::ValidationError("--log-level", std::string(status.message()));
    fedattn::rpc::RouteGrpcLogsToSpdlog();
  });
  CLI11_PARSE(app, argc, argv);
  if (app.got_subcommand("train")) return 0;  // its callback has run

  try {
    if (check->parsed()) return Check(check_config, coordinator);
    if (config_path.empty()) {
      std::cerr << "fedattn-agent: --config is required (run with --help for usage)\n";
      return 2;
    }
    return RunAgent(config_path, coordinator, collective_timeout_s);
  } catch (const std::exception& e) {
    spdlog::critical("unexpected error: {}", e.what());
    return 1;
  }
}
