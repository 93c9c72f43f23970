// Federated jobs end to end with real processes: a coordinator and three agents on 127.0.0.1 over
// mutual TLS, jobs submitted and followed with the operator CLI, models exported and checked
// against the sites' own records of what they released.
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "fedattn/agent/site_ledger.h"
#include "fedattn/common/files.h"
#include "fedattn/tensor/safetensors.h"
#include "gtest/gtest.h"
#include "util/test_federation.h"

namespace fedattn::testing {
namespace {

const std::vector<std::string> kSites = {"hospital-a", "hospital-b", "hospital-c"};

// Splits data/wdbc.csv into one file per site (row i to site i mod n).
void SplitWdbc(const std::filesystem::path& dir) {
  std::ifstream in(std::filesystem::path(FEDATTN_SOURCE_DIR) / "data" / "wdbc.csv");
  std::string header, line;
  std::getline(in, header);
  std::vector<std::ofstream> outs;
  for (const std::string& site : kSites) {
    outs.emplace_back(dir / (site + ".csv"));
    outs.back() << header << "\n";
  }
  for (size_t row = 0; std::getline(in, line); ++row) outs[row % outs.size()] << line << "\n";
}

// A small job: a tiny FT-Transformer so each round takes a second or two per site.
std::filesystem::path WriteJob(const std::filesystem::path& dir, const std::string& name, int rounds,
                               bool dp, bool secagg, int min_sites) {
  const std::filesystem::path source(FEDATTN_SOURCE_DIR);
  const std::string privacy =
      dp ? "  privacy:\n    sample_level:\n      enabled: true\n      noise_multiplier: 1.0\n"
           "      max_grad_norm: 1.0\n      delta: 1.0e-5\n"
         : "  privacy:\n    sample_level:\n      enabled: false\n";
  const std::filesystem::path path = dir / (name + ".yaml");
  std::ofstream(path) << absl::StrCat(
      "job:\n  name: ", name, "\n  seed: 3\n",
      "  model:\n    kind: tabular_transformer\n    task: classification\n    d_model: 8\n    num_layers: 1\n"
      "    num_heads: 2\n    ffn_dim: 16\n    dropout: 0.0\n    attention_dropout: 0.0\n",
      "  data:\n    kind: tabular\n    schema: ", (source / "configs/data/wdbc.schema.yaml").string(),
      "\n    validation_fraction: 0.2\n",
      "  rounds: ", rounds, "\n  sites:\n    fraction: 1.0\n    min_sites: ", min_sites, "\n",
      "  strategy:\n    name: fedavg\n",
      "  local:\n    epochs: 1\n    batch_size: 32\n    lr: 3.0e-3\n    threads: 1\n", privacy,
      "  secagg:\n    enabled: ", secagg ? "true" : "false", "\n    max_dropout_fraction: 0.0\n",
      "  deadlines:\n    train_s: 60\n    stage_s: 20\n");
  return path;
}

std::string SiteYaml(const std::filesystem::path& data, const std::string& policy = "") {
  return absl::StrCat("data:\n  path: ", data.string(), "\n", policy);
}

class JobTest : public ::testing::Test {
 protected:
  JobTest() : federation_(kSites) { SplitWdbc(federation_.root()); }

  void StartAll(const std::map<std::string, std::string>& policies = {},
                const std::map<std::string, std::vector<std::string>>& env = {}) {
    coordinator_ = federation_.StartCoordinator();
    for (const std::string& site : kSites) {
      const auto policy = policies.find(site);
      const auto environment = env.find(site);
      agents_[site] = federation_.StartAgent(
          site, SiteYaml(federation_.root() / (site + ".csv"), policy == policies.end() ? "" : policy->second),
          environment == env.end() ? std::vector<std::string>{} : environment->second);
    }
    // Every site online before a job is submitted: a round selects the sites online when it starts.
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      const CommandResult status = federation_.Status();
      const nlohmann::json json = nlohmann::json::parse(status.output, nullptr, false);
      if (json.is_object() && json.value("sites_online", 0) == static_cast<int>(kSites.size())) return;
      absl::SleepFor(absl::Milliseconds(200));
    }
    ADD_FAILURE() << "not every site came online:\n" << Logs();
  }

  std::string Submit(const std::filesystem::path& job) {
    const CommandResult result = federation_.Cli({"job", "submit", job.string()});
    EXPECT_EQ(result.exit_code, 0) << result.output;
    // stdout is the id alone; stderr (merged here) says "submitted FILE as job ID; ...".
    for (absl::string_view line : absl::StrSplit(result.output, '\n')) {
      if (!line.empty() && line.find(' ') == absl::string_view::npos) return std::string(line);
    }
    ADD_FAILURE() << "no job id in: " << result.output;
    std::string id;
    return id;
  }

  nlohmann::json JobStatus(const std::string& id) {
    const CommandResult result = federation_.Cli({"job", "status", id, "--json"});
    EXPECT_EQ(result.exit_code, 0) << result.output;
    return nlohmann::json::parse(result.output, nullptr, false);
  }

  CommandResult Wait(const std::string& id) {
    return federation_.Cli({"job", "wait", id, "--timeout", "240", "--interval", "0.5"}, absl::Seconds(260));
  }

  std::string Logs() {
    std::string logs = "coordinator:\n" + coordinator_->Log();
    for (auto& [site, agent] : agents_) logs += "\n" + site + ":\n" + agent->Log();
    return logs;
  }

  // The model of `round` as one flat float vector (tensors in file order), via `fedattn model export`.
  std::map<std::string, std::vector<float>> Export(const std::string& id, int round) {
    const std::filesystem::path out = federation_.root() / absl::StrCat(id, "-", round, ".safetensors");
    const CommandResult result =
        federation_.Cli({"model", "export", id, "--round", std::to_string(round), "-o", out.string()});
    EXPECT_EQ(result.exit_code, 0) << result.output;
    std::map<std::string, std::vector<float>> tensors;
    auto file = LoadSafetensors(out);
    if (!file.ok()) {
      ADD_FAILURE() << file.status();
      return tensors;
    }
    for (const TensorBuffer& tensor : file->tensors) {
      std::vector<float> values(tensor.data.size() / sizeof(float));
      std::memcpy(values.data(), tensor.data.data(), tensor.data.size());
      tensors[tensor.name] = std::move(values);
    }
    return tensors;
  }

  // What a site released for (job, round): its update and example count.
  std::pair<std::vector<float>, int64_t> Release(const std::string& site, const std::string& id, int round) {
    const std::filesystem::path path =
        federation_.Kit(site) / "state" / "releases" / id / absl::StrCat("round-", round, ".safetensors");
    auto file = LoadSafetensors(path);
    EXPECT_TRUE(file.ok()) << file.status();
    if (!file.ok()) return {};
    std::vector<float> update(file->tensors[0].data.size() / sizeof(float));
    std::memcpy(update.data(), file->tensors[0].data.data(), file->tensors[0].data.size());
    return {update, 0};
  }

  std::vector<agent::LedgerEntry> Ledger(const std::string& site) {
    auto ledger = agent::SiteLedger::Open(federation_.Kit(site) / "state" / "ledger.db");
    EXPECT_TRUE(ledger.ok()) << ledger.status();
    if (!ledger.ok()) return {};
    auto entries = (*ledger)->Entries();
    EXPECT_TRUE(entries.ok()) << entries.status();
    return entries.ok() ? *entries : std::vector<agent::LedgerEntry>{};
  }

  // The aggregate the coordinator applied in `round`, checked against plain weighted FedAvg of
  // the sites' released updates (full fine-tuning: trainable tensors are every tensor, in order).
  double MaxFedAvgError(const std::string& id, int round, const nlohmann::json& status) {
    const auto before = Export(id, round - 1);
    const auto after = Export(id, round);
    std::vector<float> old_flat, new_flat;
    // The update layout is the model's tensor order, which export preserves in the file.
    auto file = LoadSafetensors(federation_.root() / absl::StrCat(id, "-", round - 1, ".safetensors"));
    EXPECT_TRUE(file.ok());
    for (const TensorBuffer& tensor : file->tensors) {
      old_flat.insert(old_flat.end(), before.at(tensor.name).begin(), before.at(tensor.name).end());
      new_flat.insert(new_flat.end(), after.at(tensor.name).begin(), after.at(tensor.name).end());
    }
    std::vector<double> sum(old_flat.size(), 0.0);
    double total = 0;
    for (const auto& site : status["round_history"][round]["sites"]) {
      if (site["status"] != "contributed") continue;
      const double weight = std::stod(site["num_examples"].get<std::string>());
      const auto [update, unused] = Release(site["site"], id, round);
      EXPECT_EQ(update.size(), sum.size());
      for (size_t i = 0; i < sum.size() && i < update.size(); ++i) sum[i] += weight * update[i];
      total += weight;
    }
    double worst = 0;
    for (size_t i = 0; i < sum.size(); ++i) {
      const double expected = old_flat[i] + sum[i] / total;
      worst = std::max(worst, std::abs(expected - new_flat[i]));
    }
    return worst;
  }

  TestFederation federation_;
  std::unique_ptr<Subprocess> coordinator_;
  std::map<std::string, std::unique_ptr<Subprocess>> agents_;
};

TEST_F(JobTest, PlainJobEqualsWeightedFedAvgOfTheReleases) {
  const std::string no_dp = "policy:\n  require_sample_dp: false\n";
  StartAll({{"hospital-a", no_dp}, {"hospital-b", no_dp}, {"hospital-c", no_dp}});
  const std::string id = Submit(WriteJob(federation_.root(), "plain", 1, /*dp=*/false, /*secagg=*/false, 3));
  const CommandResult waited = Wait(id);
  ASSERT_EQ(waited.exit_code, 0) << waited.output << Logs();
  const nlohmann::json status = JobStatus(id);
  EXPECT_EQ(status["state"], "completed");
  EXPECT_LT(MaxFedAvgError(id, 1, status), 1e-6);
}

TEST_F(JobTest, SecAggDpJobCompletesAndRecordsEverySpend) {
  StartAll();
  const std::string id = Submit(WriteJob(federation_.root(), "secure", 2, /*dp=*/true, /*secagg=*/true, 3));
  const CommandResult waited = Wait(id);
  ASSERT_EQ(waited.exit_code, 0) << waited.output << Logs();
  const nlohmann::json status = JobStatus(id);
  EXPECT_EQ(status["state"], "completed");
  ASSERT_EQ(status["round_history"].size(), 3u);  // round 0 (initial model), 1, 2
  for (const auto& site : status["round_history"][2]["sites"]) {
    EXPECT_EQ(site["status"], "contributed") << site;
    EXPECT_GT(site["epsilon_cumulative"].get<double>(), 0) << site;
  }
  EXPECT_TRUE(status["round_history"][2]["validation_metrics"].contains("accuracy")) << status;
  // SecAgg's sum decodes to the weighted FedAvg of what the sites released, up to quantization.
  EXPECT_LT(MaxFedAvgError(id, 2, status), 1e-5);
  for (const std::string& site : kSites) {
    const std::vector<agent::LedgerEntry> entries = Ledger(site);
    ASSERT_EQ(entries.size(), 2u) << site;
    EXPECT_EQ(entries[0].round, 1);
    EXPECT_EQ(entries[1].round, 2);
    EXPECT_GT(entries[1].epsilon_cumulative, entries[0].epsilon_cumulative);
  }
}

TEST_F(JobTest, SiteThatDiesAfterMaskingStillCountsAndTheRoundCompletes) {
  StartAll({}, {{"hospital-c", {"FEDATTN_FAILPOINT=agent.after_masked_upload"}}});
  const std::string id = Submit(WriteJob(federation_.root(), "dropout", 1, /*dp=*/true, /*secagg=*/true, 2));
  const CommandResult waited = Wait(id);
  ASSERT_EQ(waited.exit_code, 0) << waited.output << Logs();
  const nlohmann::json status = JobStatus(id);
  std::map<std::string, std::string> states;
  for (const auto& site : status["round_history"][1]["sites"]) states[site["site"]] = site["status"];
  // Its masked update is in the sum: the survivors reveal its self-mask seed (Bonawitz et al.
  // 2017, §4 round 4), so the round completes with all three contributions.
  EXPECT_EQ(states["hospital-a"], "contributed");
  EXPECT_EQ(states["hospital-b"], "contributed");
  EXPECT_EQ(states["hospital-c"], "contributed");
  EXPECT_EQ(status["state"], "completed");
  EXPECT_TRUE(agents_["hospital-c"]->Wait(absl::Seconds(5)).has_value());
}

TEST_F(JobTest, SiteOverItsCapRefusesAndTheJobSaysSo) {
  StartAll({{"hospital-c", "policy:\n  epsilon_max: 0.01\n  delta: 1.0e-5\n"}});
  const std::string id = Submit(WriteJob(federation_.root(), "capped", 1, /*dp=*/true, /*secagg=*/true, 2));
  const CommandResult waited = Wait(id);
  ASSERT_EQ(waited.exit_code, 0) << waited.output << Logs();
  const nlohmann::json status = JobStatus(id);
  bool refused = false;
  for (const auto& site : status["round_history"][1]["sites"]) {
    if (site["site"] != "hospital-c") continue;
    refused = site["status"] == "refused";
    EXPECT_NE(site["reason"].get<std::string>().find("privacy cap"), std::string::npos) << site;
  }
  EXPECT_TRUE(refused) << status;
  const std::vector<agent::LedgerEntry> entries = Ledger("hospital-c");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].decision, agent::LedgerDecision::kRefused);
  const CommandResult shown = federation_.Cli({"job", "status", id});
  EXPECT_NE(shown.output.find("privacy cap"), std::string::npos) << shown.output;
}

TEST_F(JobTest, KilledCoordinatorResumesTheRoundItWasIn) {
  StartAll();
  const std::string id = Submit(WriteJob(federation_.root(), "restart", 3, /*dp=*/true, /*secagg=*/false, 3));
  ASSERT_TRUE(coordinator_->WaitForLog("round 2/3: 3 site(s) selected", absl::Seconds(120))) << Logs();
  coordinator_->Signal(SIGKILL);
  coordinator_->Wait(absl::Seconds(10));
  coordinator_ = federation_.StartCoordinator("coordinator-restarted.log");
  const CommandResult waited = Wait(id);
  ASSERT_EQ(waited.exit_code, 0) << waited.output << Logs() << "\nrestarted:\n" << coordinator_->Log();
  const nlohmann::json status = JobStatus(id);
  EXPECT_EQ(status["state"], "completed");
  EXPECT_EQ(status["committed_rounds"], "3");
  // Each site released each round exactly once: a round run again after the restart re-sends
  // the recorded update instead of spending again.
  for (const std::string& site : kSites) {
    const std::vector<agent::LedgerEntry> entries = Ledger(site);
    ASSERT_EQ(entries.size(), 3u) << site;
    for (int round = 1; round <= 3; ++round) EXPECT_EQ(entries[static_cast<size_t>(round - 1)].round, round);
  }
}

}  // namespace
}  // namespace fedattn::testing
