// A gtest fixture over a provisioned TestFederation whose sites hold data/wdbc.csv split between
// them: starts the coordinator and agents as real processes, submits small DP jobs and reads back
// what each party recorded (job status, the audit export, each site's signed ledger).
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fedattn/agent/site_ledger.h"
#include "gtest/gtest.h"
#include "util/subprocess.h"
#include "util/test_federation.h"

namespace fedattn::testing {

// A tiny tabular Transformer job on the split WDBC data, DP-SGD (sigma 1, C 1) unless dp is off.
struct JobOptions {
  std::string name = "job";
  int rounds = 1;
  bool dp = true;
  bool secagg = false;
  int min_sites = 0;  // 0: 2 with SecAgg, else 1
  int seed = 5;
  int batch_size = 32;
  std::string strategy = "fedavg";
  int train_deadline_s = 60;
  int stage_deadline_s = 20;
  int checkpoint_every = 1;  // job.checkpoint.every
};
std::filesystem::path WriteJob(const std::filesystem::path& dir, const JobOptions& options);

// A gtest parameter name for a failpoint ("agent.after_unmask@1" -> "agent_after_unmask_1").
std::string FailpointTestName(std::string failpoint);

class FederationFixture : public ::testing::Test {
 protected:
  // Provisions `sites` and gives site i every n-th row of data/wdbc.csv (rows_ counts them).
  explicit FederationFixture(std::vector<std::string> sites);

  // Starts (or restarts) `site`'s agent with its data and policies_[site]; `env` as NAME=value.
  void StartSite(const std::string& site, const std::vector<std::string>& env = {});
  // Waits until `sites` sites are online (a round selects the sites online when it starts).
  void WaitOnline(size_t sites);
  // Submits a job file; returns its id.
  std::string Submit(const std::filesystem::path& job);
  CommandResult Wait(const std::string& id);
  nlohmann::json JobStatus(const std::string& id);
  // Every process's log, for failure messages.
  std::string Logs();
  // `fedattn audit export` into root()/name.
  std::filesystem::path ExportAudit(const std::string& name = "audit.jsonl");
  // `fedattn-agent audit compare` of `site`'s ledger with an export.
  CommandResult Compare(const std::string& site, const std::filesystem::path& exported);
  // `site`'s signed ledger, read from its state directory.
  std::vector<agent::SignedLedgerEntry> Ledger(const std::string& site);
  // The coordinator's directory for job `id` (its checkpoints and strategy state).
  std::filesystem::path CoordinatorJobDir(const std::string& id) const {
    return federation_.Kit("coordinator") / "state" / "jobs" / id;
  }

  // Kill tests (docs/operations.md, "Fault injection"): starts the coordinator and every site,
  // with FEDATTN_FAILPOINT=`failpoint` armed in the coordinator or else in `victim`'s agent, and
  // waits until all sites are online.
  void StartWithFailpoint(const std::string& failpoint, bool in_coordinator, const std::string& victim);
  // Waits for the armed process to end at its failpoint as kill -9 would (status 137), then
  // starts it again without it. False, with the test failed, if it never did.
  bool RestartAfterFailpoint(bool in_coordinator, const std::string& victim, absl::Duration timeout);

  std::vector<std::string> sites_;
  TestFederation federation_;
  std::map<std::string, int> rows_;
  std::map<std::string, std::string> policies_;
  std::unique_ptr<Subprocess> coordinator_;
  std::map<std::string, std::unique_ptr<Subprocess>> agents_;
};

}  // namespace fedattn::testing
