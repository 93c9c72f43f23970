// An agent under `mpirun -np 2` in a real federation (coordinator and agents on 127.0.0.1 over
// mutual TLS): rank 0 is the site, rank 1 trains its share; a DP job completes and the site's
// ledger has its release. A rank killed mid-round ends the task with the deadline error, which
// the leader reports before it stops. Skipped where mpirun is missing.
#include <unistd.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "fedattn/agent/site_ledger.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/test_federation.h"

namespace fedattn::testing {
namespace {

using ::testing::HasSubstr;

const std::vector<std::string> kSites = {"hospital-a", "hospital-b"};

std::filesystem::path WriteJob(const std::filesystem::path& dir, const std::string& name) {
  const std::filesystem::path source(FEDATTN_SOURCE_DIR);
  const std::filesystem::path path = dir / (name + ".yaml");
  std::ofstream(path) << absl::StrCat(
      "job:\n  name: ", name, "\n  seed: 3\n",
      "  model:\n    kind: tabular_transformer\n    task: classification\n    d_model: 8\n    num_layers: 1\n"
      "    num_heads: 2\n    ffn_dim: 16\n    dropout: 0.0\n    attention_dropout: 0.0\n",
      "  data:\n    kind: tabular\n    schema: ", (source / "configs/data/wdbc.schema.yaml").string(),
      "\n    validation_fraction: 0.2\n  rounds: 1\n  sites:\n    fraction: 1.0\n    min_sites: 2\n",
      "  strategy:\n    name: fedavg\n",
      "  local:\n    epochs: 1\n    batch_size: 32\n    lr: 3.0e-3\n    threads: 1\n",
      "  privacy:\n    sample_level:\n      enabled: true\n      noise_multiplier: 1.0\n      max_grad_norm: 1.0\n"
      "      delta: 1.0e-5\n",
      "  secagg:\n    enabled: false\n  deadlines:\n    train_s: 60\n    stage_s: 20\n");
  return path;
}

class MpiAgentTest : public ::testing::Test {
 protected:
  MpiAgentTest() : federation_(kSites) {}

  // hospital-a under mpirun -np 2 (the env prefix of StartAgent runs mpirun, which runs the agent).
  void StartAll(const std::vector<std::string>& mpirun_extra) {
    if (access("/usr/bin/mpirun", X_OK) != 0) GTEST_SKIP() << "mpirun not installed (openmpi-bin)";
    coordinator_ = federation_.StartCoordinator();
    const std::string data = absl::StrCat("data:\n  path: ", (std::filesystem::path(FEDATTN_SOURCE_DIR) / "data/wdbc.csv").string(), "\n");
    std::vector<std::string> mpirun = {"OMPI_MCA_btl=self,vader", "OMPI_ALLOW_RUN_AS_ROOT=1",
                                       "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1", "OMP_WAIT_POLICY=passive",
                                       "/usr/bin/mpirun", "-np", "2", "--oversubscribe"};
    mpirun.insert(mpirun.end(), mpirun_extra.begin(), mpirun_extra.end());
    agents_["hospital-a"] = federation_.StartAgent("hospital-a", data, mpirun);
    agents_["hospital-b"] = federation_.StartAgent("hospital-b", data);
    ASSERT_TRUE(agents_["hospital-a"]->WaitForLog("leader of 2 ranks (mpi)", absl::Seconds(60)))
        << agents_["hospital-a"]->Log();
  }

  std::string Submit(const std::filesystem::path& job) {
    const CommandResult result = federation_.Cli({"job", "submit", job.string()});
    EXPECT_EQ(result.exit_code, 0) << result.output;
    for (absl::string_view line : absl::StrSplit(result.output, '\n')) {
      if (!line.empty() && line.find(' ') == absl::string_view::npos) return std::string(line);
    }
    return "";
  }

  TestFederation federation_;
  std::unique_ptr<Subprocess> coordinator_;
  std::map<std::string, std::unique_ptr<Subprocess>> agents_;
};

TEST_F(MpiAgentTest, ASiteOnTwoRanksTrainsADpRound) {
  StartAll({});
  absl::SleepFor(absl::Seconds(3));  // both sites online
  const std::string id = Submit(WriteJob(federation_.root(), "mpi"));
  const CommandResult waited =
      federation_.Cli({"job", "wait", id, "--timeout", "180", "--interval", "0.5"}, absl::Seconds(200));
  ASSERT_EQ(waited.exit_code, 0) << waited.output << agents_["hospital-a"]->Log();
  auto ledger = agent::SiteLedger::Open(federation_.Kit("hospital-a") / "state" / "ledger.db");
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  auto entries = (*ledger)->Entries();
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ(entries->front().mechanism.name, "poisson_gaussian");
  EXPECT_THAT(agents_["hospital-a"]->Log(), HasSubstr("rank 1: trained its share"));
}

TEST_F(MpiAgentTest, AKilledRankFailsTheTaskWithTheReasonAndStopsTheLeader) {
  StartAll({"--enable-recovery", "-x", "FEDATTN_TEST_KILL_AT_ALLREDUCE=1:2", "-x", "FEDATTN_COLLECTIVE_TIMEOUT=5"});
  absl::SleepFor(absl::Seconds(3));
  Submit(WriteJob(federation_.root(), "killed"));
  Subprocess& site = *agents_["hospital-a"];
  ASSERT_TRUE(site.WaitForLog("task failed", absl::Seconds(120))) << site.Log();
  EXPECT_THAT(site.Log(), HasSubstr("no completion within 5s (a rank died or stalled"));
  EXPECT_TRUE(site.WaitForLog("stopping: start mpirun again", absl::Seconds(30))) << site.Log();
  EXPECT_TRUE(site.Wait(absl::Seconds(60)).has_value()) << "the leader did not exit:\n" << site.Log();
}

}  // namespace
}  // namespace fedattn::testing
