// The privacy audit end to end with real processes: a coordinator and sites on 127.0.0.1 over
// mutual TLS run DP jobs; the operator exports and verifies the audit log, each site compares
// it with its own ledger, a tampered export is caught, the coordinator refuses a site its log
// shows cannot afford a round, and kills at every ledger write lose no entry.
#include <cmath>
#include <functional>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "fedattn/audit/audit_trail.h"
#include "fedattn/audit/canonical_json.h"
#include "fedattn/audit/privacy_history.h"
#include "fedattn/common/files.h"
#include "fedattn/crypto/keys.h"
#include "gtest/gtest.h"
#include "util/federation_fixture.h"

namespace fedattn::testing {
namespace {

const std::vector<std::string> kSites = {"hospital-a", "hospital-b"};
constexpr int kBatch = 32;

std::filesystem::path WriteAuditJob(const std::filesystem::path& dir, const std::string& name, int rounds, bool secagg,
                                    int train_deadline_s = 60) {
  return WriteJob(dir, {.name = name, .rounds = rounds, .secagg = secagg, .batch_size = kBatch,
                        .train_deadline_s = train_deadline_s});
}

class AuditTest : public FederationFixture {
 protected:
  AuditTest() : FederationFixture(kSites) {}

  // Rewrites an export as an insider holding the coordinator's key would: `edit` changes (or,
  // returning false, drops) records, then every hash and checkpoint signature is made consistent.
  std::string Forge(const std::filesystem::path& exported, const std::function<bool(nlohmann::json&)>& edit) {
    auto key = crypto::PrivateKeyFromPem(*ReadFile(federation_.Kit("coordinator") / "coordinator.key"));
    EXPECT_TRUE(key.ok()) << key.status();
    std::string text = *ReadFile(exported), out;
    text.pop_back();
    audit::AuditTrail rebuilt;  // no checks on the way: this is the forger's tool
    std::string head = audit::kGenesisHash, genesis;
    int64_t seq = 0;
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      nlohmann::json record = nlohmann::json::parse(line);
      if (!edit(record)) continue;
      if (record["type"] == "checkpoint") {
        const std::string message = *audit::CanonicalJson(
            nlohmann::json{{"covers_seq", seq - 1}, {"head", head}, {"log", genesis}});
        record["data"] = {{"covers_seq", seq - 1},
                          {"head", head},
                          {"signature", *audit::SignCanonical(key->get(), audit::kCheckpointDomain, message)}};
      }
      record["seq"] = seq;
      record["prev"] = head;
      record.erase("hash");
      record["hash"] = audit::Sha256Hex(*audit::CanonicalJson(record));
      head = record["hash"];
      if (seq == 0) genesis = head;
      out += *audit::CanonicalJson(record) + "\n";
      ++seq;
    }
    return out;
  }

};

TEST_F(AuditTest, ADpJobLeavesATrailThatVerifiesAndThatEverySiteConfirms) {
  coordinator_ = federation_.StartCoordinator();
  for (const std::string& site : kSites) StartSite(site);
  WaitOnline(kSites.size());
  const std::string id = Submit(WriteAuditJob(federation_.root(), "audited", 2, /*secagg=*/true));
  ASSERT_EQ(Wait(id).exit_code, 0) << Logs();

  // The budget table, from the verified log, matches each site's own ledger.
  const CommandResult privacy = federation_.Cli({"audit", "privacy", "--json"});
  ASSERT_EQ(privacy.exit_code, 0) << privacy.output;
  const nlohmann::json table = nlohmann::json::parse(privacy.output.substr(privacy.output.find('[')));
  ASSERT_EQ(table.size(), kSites.size()) << table;
  for (const nlohmann::json& row : table) {
    const auto entries = Ledger(row["site"]);
    ASSERT_EQ(entries.size(), 2u);
    EXPECT_EQ(row["releases"], 2);
    const double mine = entries.back().entry.epsilon_cumulative;
    EXPECT_NEAR(row["site_epsilon"].get<double>(), mine, 1e-9 * mine) << row;
    for (const auto& entry : entries) EXPECT_TRUE(entry.receipt.has_value()) << row["site"];
  }
  const CommandResult table_text = federation_.Cli({"audit", "privacy"});
  EXPECT_NE(table_text.output.find("SITE TOTAL"), std::string::npos) << table_text.output;

  const std::filesystem::path exported = ExportAudit();
  const CommandResult verified = federation_.Cli({"audit", "verify", exported.string()});
  EXPECT_EQ(verified.exit_code, 0) << verified.output;
  EXPECT_NE(verified.output.find("verified:"), std::string::npos) << verified.output;
  // The submission is logged with who made it, before anything of the job.
  bool submitted = false;
  for (absl::string_view line : absl::StrSplit(*ReadFile(exported), '\n', absl::SkipEmpty())) {
    const nlohmann::json record = nlohmann::json::parse(line);
    const nlohmann::json& data = record["data"];
    if (!data.is_object() || data.value("job", "") != id) continue;
    if (!submitted) {
      EXPECT_EQ(record["type"], "job_submitted") << "the job's first record: " << line;
      EXPECT_EQ(data.value("by", ""), "operator") << line;
      EXPECT_EQ(data.value("rounds", 0), 2) << line;
    }
    submitted = true;
  }
  EXPECT_TRUE(submitted);
  for (const std::string& site : kSites) {
    const CommandResult compared = Compare(site, exported);
    EXPECT_EQ(compared.exit_code, 0) << compared.output;
    EXPECT_NE(compared.output.find("OK:"), std::string::npos) << compared.output;
  }

  // An insider lowers hospital-a's last cumulative epsilon and re-signs the chain: the site's
  // signature no longer verifies, and the site sees the under-count.
  bool lowered = false;
  const std::string undercounted = Forge(exported, [&](nlohmann::json& record) {
    if (record["type"] == "ledger_entry" && record["data"]["site"] == "hospital-a" &&
        record["data"]["entry"]["seq"] == 2) {
      record["data"]["entry"]["epsilon"]["cumulative"] = record["data"]["entry"]["epsilon"]["cumulative"].get<double>() / 2;
      lowered = true;
    }
    return true;
  });
  ASSERT_TRUE(lowered);
  const std::filesystem::path forged = federation_.root() / "forged.jsonl";
  ASSERT_TRUE(WriteFileAtomic(forged, undercounted).ok());
  CommandResult result = federation_.Cli({"audit", "verify", forged.string()});
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("site's signature is invalid"), std::string::npos) << result.output;
  result = Compare("hospital-a", forged);
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("entry 2 under-counted"), std::string::npos) << result.output;
  EXPECT_EQ(Compare("hospital-b", forged).exit_code, 1);  // the export does not verify

  // The same insider drops hospital-b's first entry: the chain is consistent, the site's
  // sequence is not, and the site holds a receipt for the missing entry.
  const std::string dropped = Forge(exported, [](nlohmann::json& record) {
    return !(record["type"] == "ledger_entry" && record["data"]["site"] == "hospital-b" &&
             record["data"]["entry"]["seq"] == 1);
  });
  ASSERT_TRUE(WriteFileAtomic(forged, dropped).ok());
  result = federation_.Cli({"audit", "verify", forged.string()});
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("sequence goes from 0 to 2"), std::string::npos) << result.output;
  result = Compare("hospital-b", forged);
  EXPECT_NE(result.output.find("entry 1 missing"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("signed a receipt"), std::string::npos) << result.output;
}

TEST_F(AuditTest, TheCoordinatorDoesNotScheduleASiteItsLogShowsCannotAfford) {
  // hospital-b's cap lies between the epsilon of one round and of two: it releases round 1, and
  // the coordinator, from the log, does not select it for round 2.
  const int n_train = rows_["hospital-b"] - static_cast<int>(std::lround(0.2 * rows_["hospital-b"]));
  const audit::LedgerMechanism round{.name = "poisson_gaussian",
                                     .sampling_rate = static_cast<double>(kBatch) / n_train,
                                     .noise_multiplier = 1.0,
                                     .steps = (n_train + kBatch - 1) / kBatch,
                                     .max_grad_norm = 1.0};
  audit::PrivacyHistory history;
  const double one = *history.Epsilon(1e-5, &round);
  ASSERT_TRUE(history.Add(round).ok());
  const double two = *history.Epsilon(1e-5, &round);
  const double cap = std::sqrt(one * two);
  policies_["hospital-b"] = absl::StrCat("policy:\n  epsilon_max: ", cap, "\n  delta: 1.0e-5\n");
  coordinator_ = federation_.StartCoordinator();
  for (const std::string& site : kSites) StartSite(site);
  WaitOnline(kSites.size());
  const std::string id = Submit(WriteAuditJob(federation_.root(), "capped", 2, /*secagg=*/false));
  ASSERT_EQ(Wait(id).exit_code, 0) << Logs();
  const nlohmann::json status = JobStatus(id);
  std::map<std::string, nlohmann::json> round2;
  for (const auto& site : status["round_history"][2]["sites"]) round2[site["site"]] = site;
  ASSERT_TRUE(round2.contains("hospital-b")) << status;
  EXPECT_EQ(round2["hospital-b"]["status"], "refused") << status;
  EXPECT_EQ(round2["hospital-b"]["reason"].get<std::string>().rfind("coordinator:", 0), 0u) << status;
  EXPECT_EQ(round2["hospital-a"]["status"], "contributed");
  // The site was never asked: one release in its ledger, no refusal.
  EXPECT_EQ(Ledger("hospital-b").size(), 1u);
  const std::string log = *ReadFile(ExportAudit());
  EXPECT_NE(log.find("\"type\":\"site_skipped\""), std::string::npos);
}

// Kills at each ledger write, on either side, then restarts: the job completes, every entry of
// every site's ledger is in the coordinator's log with a receipt, and the log verifies.
struct Kill {
  std::string failpoint;
  bool coordinator;
};

class AuditKillTest : public AuditTest, public ::testing::WithParamInterface<Kill> {};

TEST_P(AuditKillTest, AKillAtALedgerWriteLosesNoEntry) {
  const Kill kill = GetParam();
  StartWithFailpoint(kill.failpoint, kill.coordinator, "hospital-a");
  const std::string id = Submit(WriteAuditJob(federation_.root(), "killed", 2, /*secagg=*/false, /*train_deadline_s=*/20));
  // The process with the armed failpoint ends on its own (status 137) in round 1; start it again.
  ASSERT_TRUE(RestartAfterFailpoint(kill.coordinator, "hospital-a", absl::Seconds(120)));
  const CommandResult waited = Wait(id);
  ASSERT_EQ(waited.exit_code, 0) << waited.output << Logs();
  EXPECT_EQ(JobStatus(id)["state"], "completed");

  const std::filesystem::path exported = ExportAudit();
  const CommandResult verified = federation_.Cli({"audit", "verify", exported.string()});
  EXPECT_EQ(verified.exit_code, 0) << verified.output;
  for (const std::string& site : kSites) {
    const auto entries = Ledger(site);
    EXPECT_FALSE(entries.empty()) << site;
    for (const auto& entry : entries) EXPECT_TRUE(entry.receipt.has_value()) << site << " entry " << entry.entry.id;
    const CommandResult compared = Compare(site, exported);
    EXPECT_EQ(compared.exit_code, 0) << compared.output;
  }
}

INSTANTIATE_TEST_SUITE_P(Failpoints, AuditKillTest,
                         ::testing::Values(Kill{"agent.before_ledger_write", false},
                                           Kill{"agent.after_ledger_write", false},
                                           Kill{"agent.after_receipt", false},
                                           Kill{"coordinator.before_ledger_append", true},
                                           Kill{"coordinator.after_ledger_append", true},
                                           Kill{"coordinator.between_audit_and_commit@2", true}),
                         [](const ::testing::TestParamInfo<Kill>& info) {
                           return FailpointTestName(info.param.failpoint);
                         });

}  // namespace
}  // namespace fedattn::testing
