// JobManager::ResumeJobs completes the audit log where a stopped coordinator left a job recorded
// in one of its two durable stores but not the other (the kill windows crash_test reaches with
// real processes): a job the store ended without its job_finished record gets it, once; a job
// the store holds but the log never saw submitted is failed, not run.
#include "fedattn/coordinator/job_manager.h"

#include "absl/strings/str_split.h"

#include "common/audit/audit_test_identities.h"
#include "fedattn/audit/audit_log.h"
#include "fedattn/common/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/temp_dir.h"

namespace fedattn::coordinator {
namespace {

using ::testing::HasSubstr;

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

class JobManagerTest : public ::testing::Test {
 protected:
  JobManagerTest()
      : ca_(audit::testing::MakeParty("ca", crypto::PartyRole::kCa, nullptr)),
        coordinator_(audit::testing::MakeParty("coord", crypto::PartyRole::kCoordinator, &ca_)) {
    options_.state_dir = dir_.path() / "state";
  }

  void SetUp() override {
    auto store = JobStore::Open(options_.state_dir);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    OpenLog();
  }

  void OpenLog() {
    audit_.reset();
    audit::AuditLog::Identity identity{"coord", coordinator_.pem, audit::testing::CopyKey(coordinator_.key.get()),
                                       ca_.pem};
    auto log = audit::AuditLog::Open(LogPath(), std::move(identity));
    ASSERT_TRUE(log.ok()) << log.status();
    audit_ = *std::move(log);
  }

  std::filesystem::path LogPath() const { return dir_.path() / "audit" / "audit.jsonl"; }

  // A job in the store, logged as submitted unless `logged` is false (the coordinator stopped
  // in between).
  std::string CreateJob(const std::string& name, bool logged) {
    auto id = store_->CreateJob(name, "job: {}\n", 1, "operator", kT0);
    EXPECT_TRUE(id.ok()) << id.status();
    if (logged) {
      EXPECT_TRUE(audit_->Append("job_submitted", {{"job", *id}, {"name", name}, {"by", "operator"}, {"rounds", 1},
                                                   {"config_sha256", "00"}})
                      .ok());
    }
    return *id;
  }

  absl::Status Resume() {
    JobManager manager(JobContext{.options = &options_, .store = store_.get(), .clock = RealClock::Get(),
                                  .audit = audit_.get()});
    return manager.ResumeJobs();
  }

  // The log's records of `type` for `job`, in order.
  std::vector<nlohmann::json> Records(const std::string& type, const std::string& job) {
    std::vector<nlohmann::json> records;
    const std::string text = *ReadFile(LogPath());
    for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
      const nlohmann::json record = nlohmann::json::parse(line);
      if (record["type"] == type && record["data"].value("job", "") == job) records.push_back(record["data"]);
    }
    return records;
  }

  testing::TempDir dir_;
  audit::testing::Party ca_, coordinator_;
  CoordinatorOptions options_;
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<audit::AuditLog> audit_;
};

TEST_F(JobManagerTest, AJobTheStoreEndedGetsItsMissingJobFinishedOnce) {
  const std::string done = CreateJob("done", true);
  ASSERT_TRUE(store_->StartRound(done, 1, kT0).ok());
  ASSERT_TRUE(store_->CommitRound(done, 1, {}, {}, "aa", kT0).ok());  // the last round: completed
  const std::string broken = CreateJob("broken", true);
  ASSERT_TRUE(store_->SetJobState(broken, "failed", "round 1 failed 3 times", kT0).ok());

  ASSERT_TRUE(Resume().ok());
  const std::vector<nlohmann::json> finished = Records("job_finished", done);
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0]["state"], "completed");
  EXPECT_EQ(finished[0]["error"], "");
  const std::vector<nlohmann::json> failed = Records("job_finished", broken);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0]["state"], "failed");
  EXPECT_EQ(failed[0]["error"], "round 1 failed 3 times");

  // Another restart, with the log read back from its file, adds nothing.
  OpenLog();
  ASSERT_TRUE(Resume().ok());
  EXPECT_EQ(Records("job_finished", done).size(), 1u);
  EXPECT_EQ(Records("job_finished", broken).size(), 1u);
}

TEST_F(JobManagerTest, AJobTheLogNeverSawSubmittedIsFailedNotRun) {
  const std::string unlogged = CreateJob("unlogged", false);
  ASSERT_TRUE(Resume().ok());
  auto job = store_->GetJob(unlogged);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state, "failed");
  EXPECT_THAT(job->error, HasSubstr("before the submission reached the audit log"));
  auto rounds = store_->Rounds(unlogged);
  ASSERT_TRUE(rounds.ok());
  EXPECT_TRUE(rounds->empty());
  // The log still knows nothing of it: no job_finished for a job it never saw submitted.
  EXPECT_EQ(ReadFile(LogPath())->find(unlogged), std::string::npos);
}

}  // namespace
}  // namespace fedattn::coordinator
