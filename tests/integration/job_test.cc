// Federated jobs end to end with real processes: a coordinator and three agents on 127.0.0.1 over
// mutual TLS, jobs submitted and followed with the operator CLI, models exported and checked
// against the sites' own records of what they released.
#include <cmath>
#include <cstring>
#include <map>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "fedattn/common/files.h"
#include "fedattn/tensor/safetensors.h"
#include "gtest/gtest.h"
#include "util/federation_fixture.h"

namespace fedattn::testing {
namespace {

const std::vector<std::string> kSites = {"hospital-a", "hospital-b", "hospital-c"};

// A small job: a tiny FT-Transformer so each round takes a second or two per site.
std::filesystem::path WriteSmallJob(const std::filesystem::path& dir, const std::string& name, int rounds, bool dp,
                                    bool secagg, int min_sites) {
  return WriteJob(dir, {.name = name, .rounds = rounds, .dp = dp, .secagg = secagg, .min_sites = min_sites, .seed = 3});
}

class JobTest : public FederationFixture {
 protected:
  JobTest() : FederationFixture(kSites) {}

  // Starts the coordinator and every site (with `policies`, and `env` entries per site), and
  // waits until all are online: a round selects the sites online when it starts.
  void StartAll(const std::map<std::string, std::string>& policies = {},
                const std::map<std::string, std::vector<std::string>>& env = {}) {
    policies_ = policies;
    coordinator_ = federation_.StartCoordinator();
    for (const std::string& site : kSites) {
      const auto environment = env.find(site);
      StartSite(site, environment == env.end() ? std::vector<std::string>{} : environment->second);
    }
    WaitOnline(kSites.size());
  }

  std::vector<agent::LedgerEntry> Entries(const std::string& site) {
    std::vector<agent::LedgerEntry> entries;
    for (const agent::SignedLedgerEntry& signed_entry : Ledger(site)) entries.push_back(signed_entry.entry);
    return entries;
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

};

TEST_F(JobTest, PlainJobEqualsWeightedFedAvgOfTheReleases) {
  const std::string no_dp = "policy:\n  require_sample_dp: false\n";
  StartAll({{"hospital-a", no_dp}, {"hospital-b", no_dp}, {"hospital-c", no_dp}});
  const std::string id = Submit(WriteSmallJob(federation_.root(), "plain", 1, /*dp=*/false, /*secagg=*/false, 3));
  const CommandResult waited = Wait(id);
  ASSERT_EQ(waited.exit_code, 0) << waited.output << Logs();
  const nlohmann::json status = JobStatus(id);
  EXPECT_EQ(status["state"], "completed");
  EXPECT_LT(MaxFedAvgError(id, 1, status), 1e-6);
}

TEST_F(JobTest, SecAggDpJobCompletesAndRecordsEverySpend) {
  StartAll();
  const std::string id = Submit(WriteSmallJob(federation_.root(), "secure", 2, /*dp=*/true, /*secagg=*/true, 3));
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
    const std::vector<agent::LedgerEntry> entries = Entries(site);
    ASSERT_EQ(entries.size(), 2u) << site;
    EXPECT_EQ(entries[0].round, 1);
    EXPECT_EQ(entries[1].round, 2);
    EXPECT_GT(entries[1].epsilon_cumulative, entries[0].epsilon_cumulative);
  }
}

TEST_F(JobTest, SiteThatDiesAfterMaskingStillCountsAndTheRoundCompletes) {
  StartAll({}, {{"hospital-c", {"FEDATTN_FAILPOINT=agent.after_masked_upload"}}});
  const std::string id = Submit(WriteSmallJob(federation_.root(), "dropout", 1, /*dp=*/true, /*secagg=*/true, 2));
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
  const std::string id = Submit(WriteSmallJob(federation_.root(), "capped", 1, /*dp=*/true, /*secagg=*/true, 2));
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
  const std::vector<agent::LedgerEntry> entries = Entries("hospital-c");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].decision, agent::LedgerDecision::kRefused);
  const CommandResult shown = federation_.Cli({"job", "status", id});
  EXPECT_NE(shown.output.find("privacy cap"), std::string::npos) << shown.output;
}

TEST_F(JobTest, KilledCoordinatorResumesTheRoundItWasIn) {
  StartAll();
  const std::string id = Submit(WriteSmallJob(federation_.root(), "restart", 3, /*dp=*/true, /*secagg=*/false, 3));
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
    const std::vector<agent::LedgerEntry> entries = Entries(site);
    ASSERT_EQ(entries.size(), 3u) << site;
    for (int round = 1; round <= 3; ++round) EXPECT_EQ(entries[static_cast<size_t>(round - 1)].round, round);
  }
}

}  // namespace
}  // namespace fedattn::testing
