// kill -9 at each stage of a round, with real processes on 127.0.0.1 over mutual TLS: a two-round
// SecAgg + DP-SGD job (FedAdam, so the server optimizer's state is a durable write too) in which a
// site's agent or the coordinator ends at a FEDATTN_FAILPOINT as kill -9 would, and is restarted.
// The job must complete, with every round committed exactly once (only a commit the log marks
// abandoned runs again), each site releasing each round once and never twice under one round
// number, each release trained from the model the previous round committed, every ledger entry
// logged with a receipt, the log saying once that the job ended, no earlier round's files left
// behind, and the audit export verifying. The ledger-write kills are in audit_test.
#include <map>
#include <set>

#include "absl/strings/str_split.h"
#include "fedattn/common/files.h"
#include "gmock/gmock.h"
#include "util/federation_fixture.h"

namespace fedattn::testing {
namespace {

const std::vector<std::string> kSites = {"hospital-a", "hospital-b"};
constexpr int kRounds = 2;

struct Crash {
  std::string failpoint;  // name@hit: round 2's stage unless said otherwise
  bool coordinator;       // else hospital-a's agent
};
void PrintTo(const Crash& crash, std::ostream* out) { *out << crash.failpoint; }

// What the coordinator's audit log says about the job's commits.
struct Commits {
  std::map<int64_t, std::vector<std::string>> models;  // round -> model hash of each round_committed
  std::map<int64_t, int> abandoned;                    // round -> round_abandoned records
  int submitted = 0;                                   // job_submitted records
  std::vector<std::string> finished;                   // the state of each job_finished record
};

Commits ReadCommits(const std::filesystem::path& exported, const std::string& job) {
  Commits commits;
  const std::string text = *ReadFile(exported);
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    const nlohmann::json record = nlohmann::json::parse(line);
    const nlohmann::json& data = record["data"];
    if (!data.is_object() || data.value("job", "") != job) continue;
    if (record["type"] == "round_committed") commits.models[data["round"]].push_back(data["model_sha256"]);
    if (record["type"] == "round_abandoned") ++commits.abandoned[data["round"]];
    if (record["type"] == "job_submitted") ++commits.submitted;
    if (record["type"] == "job_finished") commits.finished.push_back(data["state"]);
  }
  return commits;
}

// A 64-bit integer from job status JSON (protobuf's JSON writes uint64 as a string).
int64_t Int(const nlohmann::json& value) {
  return value.is_string() ? std::stoll(value.get<std::string>()) : value.get<int64_t>();
}

class CrashTest : public FederationFixture, public ::testing::WithParamInterface<Crash> {
 protected:
  CrashTest() : FederationFixture(kSites) {}
};

class CrashSubmitTest : public FederationFixture {
 protected:
  CrashSubmitTest() : FederationFixture(kSites) {}
};

TEST_P(CrashTest, TheJobResumesAndNoCommittedRoundIsLostOrRedone) {
  const Crash crash = GetParam();
  StartWithFailpoint(crash.failpoint, crash.coordinator, "hospital-a");
  const std::string id = Submit(WriteJob(federation_.root(), {.name = "crash",
                                                              .rounds = kRounds,
                                                              .secagg = true,
                                                              .strategy = "fedadam",
                                                              .train_deadline_s = 20,
                                                              .stage_deadline_s = 8,
                                                              .checkpoint_every = 0}));

  ASSERT_TRUE(RestartAfterFailpoint(crash.coordinator, "hospital-a", absl::Seconds(150)));
  const CommandResult waited = Wait(id);
  ASSERT_EQ(waited.exit_code, 0) << waited.output << Logs();

  // The job store: every round committed once, with its model.
  const nlohmann::json status = JobStatus(id);
  EXPECT_EQ(status["state"], "completed") << status;
  EXPECT_EQ(Int(status["committed_rounds"]), kRounds) << status;
  std::map<int64_t, std::string> committed;  // round -> model hash
  for (const nlohmann::json& round : status["round_history"]) {
    const int64_t number = Int(round["round"]);
    EXPECT_FALSE(committed.contains(number)) << "round " << number << " listed twice: " << status;
    EXPECT_EQ(round["state"], "committed") << round;
    committed[number] = round.value("model_sha256", "");
  }
  for (int64_t round = 0; round <= kRounds; ++round) {
    ASSERT_TRUE(committed.contains(round)) << "round " << round << " missing: " << status;
    EXPECT_FALSE(committed[round].empty()) << "round " << round;
  }

  // The audit log: each round committed once, unless an earlier commit was marked abandoned,
  // and the last commit of each round is the model the job store holds.
  const std::filesystem::path exported = ExportAudit();
  const CommandResult verified = federation_.Cli({"audit", "verify", exported.string()});
  EXPECT_EQ(verified.exit_code, 0) << verified.output;
  const Commits commits = ReadCommits(exported, id);
  for (int64_t round = 0; round <= kRounds; ++round) {
    const auto models = commits.models.find(round);
    ASSERT_NE(models, commits.models.end()) << "no round_committed for round " << round;
    const auto abandoned = commits.abandoned.find(round);
    EXPECT_EQ(models->second.size(), 1u + (abandoned == commits.abandoned.end() ? 0 : abandoned->second))
        << "round " << round << " committed again without being abandoned";
    EXPECT_EQ(models->second.back(), committed[round]) << "round " << round;
  }
  EXPECT_EQ(commits.submitted, 1);
  EXPECT_EQ(commits.finished, std::vector<std::string>{"completed"}) << "the log must say once that the job ended";

  // The job's directory: with checkpoint.every 0, round 0's model and the last round's files
  // alone, even after a kill in the pruning window.
  std::set<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(CoordinatorJobDir(id))) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("round-") || name.starts_with("strategy-")) files.insert(name);
  }
  EXPECT_EQ(files, (std::set<std::string>{"round-0.safetensors", "round-2.safetensors", "strategy-2.safetensors"}));

  // Each site: one release per round (a round number is never reused for a second release),
  // trained from the previous round's committed model, logged with a receipt.
  for (const std::string& site : kSites) {
    std::set<int64_t> released;
    for (const agent::SignedLedgerEntry& signed_entry : Ledger(site)) {
      const agent::LedgerEntry& entry = signed_entry.entry;
      EXPECT_TRUE(released.insert(entry.round).second) << site << " released round " << entry.round << " twice";
      EXPECT_EQ(entry.model_sha256, committed[entry.round - 1]) << site << " round " << entry.round;
      EXPECT_TRUE(signed_entry.receipt.has_value()) << site << " entry " << entry.id;
    }
    EXPECT_EQ(released, (std::set<int64_t>{1, 2})) << site;
    const CommandResult compared = Compare(site, exported);
    EXPECT_EQ(compared.exit_code, 0) << compared.output;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Stages, CrashTest,
    ::testing::Values(
        // The coordinator, at each stage of round 2 and each durable write of a round.
        Crash{"coordinator.after_initial_model", true},     // round 0: saved, not yet committed
        Crash{"coordinator.after_start_round@2", true},     // round started in the job store
        Crash{"coordinator.secagg_share_keys@2", true},     // keys advertised, shares awaited
        Crash{"coordinator.secagg_masked_input@2", true},   // shares routed, masked updates awaited
        Crash{"coordinator.secagg_unmask@2", true},         // masked sum held, unmasking awaited
        Crash{"coordinator.after_checkpoint@2", true},      // new model saved, not committed
        Crash{"coordinator.after_strategy_state@2", true},  // FedAdam moments saved, not committed
        Crash{"coordinator.after_commit@1", true},          // round 1 committed, files not pruned
        Crash{"coordinator.after_commit@2", true},          // the last round committed, job_finished not logged
        // hospital-a's agent, at each stage of its part in a round.
        Crash{"agent.after_download@2", false},       // model in hand, nothing trained or charged
        Crash{"agent.after_advertise@2", false},      // released, keys advertised
        Crash{"agent.after_share_keys@2", false},     // key shares sent
        Crash{"agent.after_masked_upload@2", false},  // masked update sent, unmasking not done
        Crash{"agent.after_unmask@1", false}),        // its part in round 1 done
    [](const ::testing::TestParamInfo<Crash>& info) { return FailpointTestName(info.param.failpoint); });

// Killed between recording a job and logging its job_submitted: the operator never got the id,
// so on restart the job is failed, never run, and the log holds nothing of it.
TEST_F(CrashSubmitTest, AJobWhoseSubmissionWasNeverLoggedIsFailedNotRun) {
  StartWithFailpoint("coordinator.after_job_created", true, "hospital-a");
  const CommandResult submitted = federation_.Cli(
      {"job", "submit", WriteJob(federation_.root(), {.name = "unlogged", .rounds = 1}).string()});
  EXPECT_NE(submitted.exit_code, 0) << submitted.output;
  ASSERT_TRUE(RestartAfterFailpoint(true, "hospital-a", absl::Seconds(30)));

  const nlohmann::json status = JobStatus("unlogged-1");
  EXPECT_EQ(status["state"], "failed") << status;
  EXPECT_THAT(status.value("error", ""), ::testing::HasSubstr("before the submission reached the audit log"));
  EXPECT_FALSE(status.contains("round_history") && !status["round_history"].empty()) << status;

  const std::filesystem::path exported = ExportAudit();
  EXPECT_EQ(federation_.Cli({"audit", "verify", exported.string()}).exit_code, 0);
  EXPECT_THAT(*ReadFile(exported), ::testing::Not(::testing::HasSubstr("unlogged-1")));
}

}  // namespace
}  // namespace fedattn::testing
