// fedattn-simulate: N virtual sites against the real round engine in one process (research,
// fast tests). See fedattn/simulation/simulation.h and docs/operations.md, "Simulation".
//
//   fedattn-simulate --job configs/jobs/wdbc_dp.yaml --data data/wdbc.csv --sites 5 --split label
//                    --label-column diagnosis --alpha 1 --seed 7 [--epsilon-max 3] [--out DIR]
//
// A research tool, not a deployment: unlike fedattn-coordinator and fedattn-agent, which stay
// apart (the coordinator links no LibTorch), this binary links both the coordinator and the
// agent's round tasks. Exit status: 0 when the job completed, 1 when it did not, 2 for bad
// arguments or a federation that could not be brought up.
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>

#include "CLI/CLI.hpp"
#include "fedattn/common/logging.h"
#include "fedattn/config.h"
#include "fedattn/models/central_training.h"
#include "fedattn/rpc/grpc_logging.h"
#include "fedattn/simulation/simulation.h"

namespace {

// A fresh directory under $TMPDIR (or /tmp) for a run without --out.
std::filesystem::path MakeTempDir() {
  const char* tmp = getenv("TMPDIR");
  std::string pattern = (std::filesystem::path(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") /
                         "fedattn-simulate-XXXXXX")
                            .string();
  if (mkdtemp(pattern.data()) == nullptr) return {};
  return pattern;
}

// One line of what this process holds after a round: resident memory (VmRSS) and open file
// descriptors. Coordinator and sites share the process, so a leak in either shows; the load test
// (tests/integration/load_test.cc) reads these lines.
void PrintResources(int64_t round) {
  std::ifstream status("/proc/self/status");
  std::string line;
  double rss_mb = -1;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) rss_mb = std::stod(line.substr(6)) / 1024;
  }
  int64_t fds = 0;
  std::error_code error;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", error);
       !error && it != std::filesystem::directory_iterator(); it.increment(error)) {
    ++fds;
  }
  // One write: the sites' log lines share stderr, and a line written piece by piece can be split
  // by them (tests/integration/load_test.cc parses it).
  std::ostringstream sample;
  sample << "resources after round " << round << ": rss_mb " << rss_mb << " fds " << fds << "\n";
  std::cerr << sample.str() << std::flush;
}

int Run(fedattn::simulation::SimulationOptions options, bool keep, bool resources, bool json) {
  const bool temporary = options.out.empty();
  if (temporary) {
    options.out = MakeTempDir();
    if (options.out.empty()) {
      std::cerr << "fedattn-simulate: cannot create a temporary directory\n";
      return 2;
    }
  }
  auto result = fedattn::simulation::RunSimulation(options, [resources](const fedattn::v1::RoundInfo& round) {
    if (round.round() > 0) std::cerr << fedattn::simulation::DescribeRound(round) << std::endl;
    if (resources && round.round() > 0) PrintResources(round.round());
  });
  if (temporary && !keep) {
    std::error_code ignored;
    std::filesystem::remove_all(options.out, ignored);
  } else {
    std::cerr << "work directory (kits, states, ledgers, split data): " << options.out.string() << "\n";
  }
  if (!result.ok()) {
    std::cerr << "fedattn-simulate: " << result.status().message() << "\n";
    return 2;
  }
  if (json) {
    std::cout << fedattn::simulation::ReportToJson(*result);
  } else {
    fedattn::simulation::PrintReport(*result, std::cout);
  }
  return result->job.state() == "completed" ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything else: libgomp reads OMP_WAIT_POLICY once (may re-execute this process).
  fedattn::models::EnsurePassiveOpenMpWait();
  CLI::App app("FedAttn simulation: N virtual sites and the real coordinator in one process", "fedattn-simulate");
  app.set_version_flag("--version", "fedattn-simulate " FEDATTN_VERSION);
  fedattn::simulation::SimulationOptions options;
  std::string split = "iid", log_level = "warn";
  double timeout_s = 7200;
  bool keep = false, resources = false, json = false;
  app.add_option("--job", options.job, "The job file (configs/jobs/*.yaml)")->required()->check(CLI::ExistingFile);
  app.add_option("--data", options.data, "One CSV, split across the sites")->required()->check(CLI::ExistingFile);
  app.add_option("--sites", options.sites, "Number of virtual sites (site-1..site-N); at least the job's "
                                           "sites.min_sites")
      ->capture_default_str();
  app.add_option("--split", split, "How rows go to sites: iid, label (Dirichlet label skew) or column (by group)")
      ->capture_default_str();
  app.add_option("--label-column", options.label_column, "Class column (required for --split label)");
  app.add_option("--group-column", options.group_column, "Grouping column (required for --split column)");
  app.add_option("--alpha", options.alpha, "Dirichlet concentration for --split label")->capture_default_str();
  app.add_option("--seed", options.seed, "Seed of the split")->capture_default_str();
  app.add_option("--epsilon-max", options.epsilon_max, "Every site's privacy cap (policy.epsilon_max at delta 1e-5)");
  app.add_option("--out", options.out,
                 "Work directory (must be empty or absent), kept after the run; default: a temporary one, removed");
  app.add_flag("--keep", keep, "Keep the temporary work directory and print its path");
  app.add_flag("--json", json, "Print the final report as JSON (the job with its rounds, each site's releases and "
                               "epsilon) instead of tables");
  app.add_flag("--resources", resources,
               "After each round, print this process's resident memory and open file descriptors");
  app.add_option("--threads-per-site", options.threads_per_site,
                 "Replaces the job's local.threads (0 keeps the job's value)")
      ->capture_default_str();
  app.add_option("--timeout", timeout_s, "Cancel the job after this many seconds")->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const absl::Status logging = fedattn::InitLogging("simulate", log_level);
  if (!logging.ok()) {
    std::cerr << "fedattn-simulate: " << logging.message() << "\n";
    return 2;
  }
  fedattn::rpc::RouteGrpcLogsToSpdlog();
  auto mode = fedattn::agent::ParseSplitMode(split);
  if (!mode.ok()) {
    std::cerr << "fedattn-simulate: --split: " << mode.status().message() << "\n";
    return 2;
  }
  options.split = *mode;
  options.timeout = absl::Seconds(timeout_s);
  try {
    return Run(options, keep, resources, json);
  } catch (const std::exception& e) {
    std::cerr << "fedattn-simulate: unexpected error: " << e.what() << "\n";
    return 1;
  }
}
