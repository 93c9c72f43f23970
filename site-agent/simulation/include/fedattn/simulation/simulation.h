// `fedattn-simulate`: N virtual sites and the real coordinator in one process, for research and
// fast tests (docs/operations.md, "Simulation").
//
// Nothing is faked: a temporary federation is provisioned (CA, one certificate per site), the
// data set is split with agent::SplitCsvFile, the coordinator (CoordinatorServer: job manager,
// round engine, SecAgg+ server) listens on 127.0.0.1 with mutual TLS, and every site is a real
// agent::Agent with its own GrpcCoordinatorLink, RoundTasks (DP-SGD, SecAgg+ client) and site
// ledger. The job goes through the admin API as `fedattn job submit` sends it. Only the process
// boundary is gone, which is why this library - unlike the production binaries - links both the
// coordinator and the agent's round tasks.
//
// Thread safety: RunSimulation may be called from one thread at a time (LibTorch's thread count
// is process-wide).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fedattn/agent/data_split.h"
#include "fedattn/v1/fedattn.pb.h"

namespace fedattn::simulation {

struct SimulationOptions {
  std::filesystem::path job;   // the operator's job file (configs/jobs/*.yaml), resolved as `fedattn job submit` does
  std::filesystem::path data;  // one CSV, split across the sites
  int sites = 3;               // N >= 1 sites, named site-1..site-N; must be >= the job's sites.min_sites
  agent::SplitMode split = agent::SplitMode::kIid;
  std::string label_column;    // label mode: required; otherwise only counted
  std::string group_column;    // column mode: required
  double alpha = 1.0;          // label mode: Dirichlet concentration
  uint64_t seed = 7;           // the split's seed (the job keeps its own job.seed)
  // Every site's policy.epsilon_max (its cap across jobs, at policy.delta = 1e-5); +inf: no cap.
  double epsilon_max = std::numeric_limits<double>::infinity();
  // Work directory (kits, coordinator state, site states, split data); must be empty or absent.
  std::filesystem::path out;
  // Replaces the job's local.threads: N sites train at once in this process, and 0 ("every
  // CPU") at each would oversubscribe the machine. 0 keeps the job's value.
  int64_t threads_per_site = 1;
  absl::Duration timeout = absl::Hours(2);  // the job is cancelled after this

  // INVALID_ARGUMENT naming the offending option.
  [[nodiscard]] absl::Status Validate() const;
};

// What one site's own ledger says after the job.
struct SiteOutcome {
  std::string name;
  int64_t rows = 0;  // its share of the data
  int64_t releases = 0, refusals = 0;  // this job's ledger rows
  double epsilon_job = 0;    // this job's releases composed, at `delta` (+inf without sample-level DP)
  double epsilon_total = 0;  // every release of the site, at `delta`
};

struct SimulationResult {
  v1::JobInfo job;  // as the admin API reports it at the end
  std::vector<SiteOutcome> sites;
  double delta = 0;  // the job's sample-level delta (the sites' policy delta without DP)
  int64_t threads_per_site = 0;  // the job's local.threads as run
};

// Called once for each round that ends (committed, or failed before a retry), in order.
using RoundCallback = std::function<void(const v1::RoundInfo& round)>;

// Runs the whole simulation and returns when the job has ended (completed, failed or cancelled
// after the timeout), with every agent and the coordinator stopped.
// Errors (before anything runs, or when the federation cannot be brought up): INVALID_ARGUMENT
// for bad options, a job that does not validate, or a job whose sites.min_sites exceeds `sites`
// (no round could ever commit); the splitter's errors; UNAVAILABLE when the sites do not come
// online. A job that ends badly is not an error: see result.job.state().
[[nodiscard]] absl::StatusOr<SimulationResult> RunSimulation(const SimulationOptions& options,
                                                             const RoundCallback& on_round = {});

// One line for a round that ended: "round 2 committed: 5/5 sites contributed; accuracy 0.93 ...".
std::string DescribeRound(const v1::RoundInfo& round);
// The summary: the job's state, the round table, and each site's epsilon from its ledger.
void PrintReport(const SimulationResult& result, std::ostream& out);
// The same as one JSON object: "job" (the admin API's JobInfo, protobuf's JSON mapping), "sites"
// (name, rows, releases, refusals, epsilon_job, epsilon_total; null for an unbounded epsilon),
// "delta", "threads_per_site".
std::string ReportToJson(const SimulationResult& result);

}  // namespace fedattn::simulation
