#include "fedattn/audit/audit_log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "audit_test_identities.h"
#include "fedattn/common/files.h"
#include "fedattn/dp/accountant.h"
#include "util/temp_dir.h"

namespace fedattn::audit {
namespace {

using testing::MakeParty;
using testing::Party;
using testing::TestSite;

class AuditLogTest : public ::testing::Test {
 protected:
  AuditLogTest()
      : ca_(MakeParty("ca", crypto::PartyRole::kCa, nullptr)),
        coordinator_(MakeParty("coord", crypto::PartyRole::kCoordinator, &ca_)),
        path_(dir_.path() / "audit" / "audit.jsonl") {}

  std::unique_ptr<AuditLog> OpenLog() {
    AuditLog::Identity identity{"coord", coordinator_.pem, testing::CopyKey(coordinator_.key.get()), ca_.pem};
    auto log = AuditLog::Open(path_, std::move(identity));
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? std::move(*log) : nullptr;
  }

  fedattn::testing::TempDir dir_;
  Party ca_, coordinator_;
  std::filesystem::path path_;
};

TEST_F(AuditLogTest, NewLogIsPrivateAndStartsSigned) {
  auto log = OpenLog();
  ASSERT_NE(log, nullptr);
  struct stat info {};
  ASSERT_EQ(::stat(path_.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600);
  auto text = ReadFile(path_);
  ASSERT_TRUE(text.ok());
  auto trail = VerifyAuditExport(*text, AuditTrail::Options{.ca_pem = ca_.pem});
  ASSERT_TRUE(trail.ok()) << trail.status();
  EXPECT_EQ(trail->size(), 2);  // log_opened, checkpoint
}

TEST_F(AuditLogTest, LogsEntriesAndIssuesReceiptsTheSiteCanVerify) {
  auto log = OpenLog();
  TestSite site("st-marys", &ca_);
  const auto first = site.Next("job-1", 1, 0.1, 1.1, 50);
  auto receipt = log->RecordLedgerEntry("st-marys", site.party().pem, first.canonical, first.signature);
  ASSERT_TRUE(receipt.ok()) << receipt.status();
  EXPECT_TRUE(VerifyReceipt(*receipt, coordinator_.pem, ca_.pem, "st-marys", Sha256Hex(first.canonical)).ok());
  // A receipt for another entry, or from another key, does not verify.
  EXPECT_FALSE(VerifyReceipt(*receipt, coordinator_.pem, ca_.pem, "st-marys", std::string(64, '0')).ok());
  Party impostor = MakeParty("coord", crypto::PartyRole::kCoordinator, &ca_);
  EXPECT_FALSE(VerifyReceipt(*receipt, impostor.pem, ca_.pem, "st-marys", Sha256Hex(first.canonical)).ok());

  // Sent again (a retried call): the same receipt, nothing new logged.
  auto before = ReadFile(path_);
  auto again = log->RecordLedgerEntry("st-marys", site.party().pem, first.canonical, first.signature);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->json, receipt->json);
  EXPECT_EQ(*ReadFile(path_), *before);
  EXPECT_TRUE(log->HasRelease("st-marys", "job-1", 1));
  EXPECT_FALSE(log->HasRelease("st-marys", "job-1", 2));
}

TEST_F(AuditLogTest, RefusesBadEntriesAndLogsNothing) {
  auto log = OpenLog();
  TestSite site("st-marys", &ca_);
  TestSite other("other", &ca_);
  const auto entry = site.Next("job-1", 1, 0.1, 1.1, 50);

  // Signed by another key.
  const std::string forged = *SignCanonical(other.party().key.get(), kLedgerEntryDomain, entry.canonical);
  auto status = log->RecordLedgerEntry("st-marys", site.party().pem, entry.canonical, forged).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;

  // Under-counted: the cumulative epsilon lowered and re-signed by the site itself.
  LedgerEntry low = entry.entry;
  low.epsilon_cumulative *= 0.5;
  const std::string low_canonical = *CanonicalLedgerEntry(low);
  status = log->RecordLedgerEntry("st-marys", site.party().pem, low_canonical,
                                  *SignCanonical(site.party().key.get(), kLedgerEntryDomain, low_canonical))
               .status();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("under-counted"), std::string::npos) << status;

  // Not canonical.
  status = log->RecordLedgerEntry("st-marys", site.party().pem, entry.canonical + " ", entry.signature).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  // Nothing was charged to the site.
  EXPECT_TRUE(log->BudgetOf("st-marys", "job-1").value() == std::nullopt);
  EXPECT_FALSE(log->HasRelease("st-marys", "job-1", 1));

  // A different entry under a sequence number already logged.
  ASSERT_TRUE(log->RecordLedgerEntry("st-marys", site.party().pem, entry.canonical, entry.signature).ok());
  LedgerEntry changed = entry.entry;
  changed.round = 9;
  const std::string changed_canonical = *CanonicalLedgerEntry(changed);
  status = log->RecordLedgerEntry("st-marys", site.party().pem, changed_canonical,
                                  *SignCanonical(site.party().key.get(), kLedgerEntryDomain, changed_canonical))
               .status();
  EXPECT_EQ(status.code(), absl::StatusCode::kAlreadyExists) << status;
}

TEST_F(AuditLogTest, RecordedEpsilonMatchesAnIndependentAccountant) {
  auto log = OpenLog();
  TestSite site("st-marys", &ca_);
  auto accountant = *dp::RdpAccountant::Create();
  for (int round = 1; round <= 3; ++round) {
    const auto entry = site.Next("job-1", round, 0.05 * round, 1.0 + 0.2 * round, 20 * round);
    ASSERT_TRUE(log->RecordLedgerEntry("st-marys", site.party().pem, entry.canonical, entry.signature).ok());
    ASSERT_TRUE(accountant.Compose(dp::GaussianSteps{0.05 * round, 1.0 + 0.2 * round, 20 * round}).ok());
    const double expected = accountant.GetEpsilon(1e-5)->epsilon;
    EXPECT_NEAR(entry.entry.epsilon_cumulative, expected, 1e-9 * expected);
    auto budget = log->BudgetOf("st-marys", "job-1");
    ASSERT_TRUE(budget.ok() && budget->has_value());
    EXPECT_NEAR((*budget)->spent, expected, 1e-9 * expected);
    ASSERT_TRUE((*budget)->after_next_round.has_value());
    EXPECT_GT(*(*budget)->after_next_round, expected);
  }
}

// A restarted coordinator completes the log from these (JobManager::ResumeJobs), so they must
// survive a reopen.
TEST_F(AuditLogTest, KnowsWhichJobsItLoggedAsSubmittedAndFinished) {
  {
    auto log = OpenLog();
    ASSERT_TRUE(log->Append("job_submitted", {{"job", "job-1"}, {"name", "job"}, {"by", "admin"}, {"rounds", 2},
                                              {"config_sha256", "ab"}})
                    .ok());
    ASSERT_TRUE(log->Append("job_submitted", {{"job", "job-2"}, {"name", "job"}, {"by", "admin"}, {"rounds", 2},
                                              {"config_sha256", "cd"}})
                    .ok());
    ASSERT_TRUE(log->Append("job_finished", {{"job", "job-1"}, {"state", "completed"}, {"error", ""}}).ok());
    EXPECT_TRUE(log->HasJobFinished("job-1"));
    EXPECT_FALSE(log->HasJobFinished("job-2"));
  }
  auto log = OpenLog();
  EXPECT_TRUE(log->HasJobSubmitted("job-1"));
  EXPECT_TRUE(log->HasJobSubmitted("job-2"));
  EXPECT_FALSE(log->HasJobSubmitted("job-3"));
  EXPECT_TRUE(log->HasJobFinished("job-1"));
  EXPECT_FALSE(log->HasJobFinished("job-2"));
}

TEST_F(AuditLogTest, ReopensAfterACrashThatCutTheLastLine) {
  TestSite site("st-marys", &ca_);
  const auto entry = site.Next("job-1", 1, 0.1, 1.1, 50);
  {
    auto log = OpenLog();
    ASSERT_TRUE(log->RecordLedgerEntry("st-marys", site.party().pem, entry.canonical, entry.signature).ok());
    ASSERT_TRUE(log->Append("round_committed", {{"job", "job-1"}, {"round", 1}, {"model_sha256", "ab"}}).ok());
  }
  const std::string good = *ReadFile(path_);
  {
    std::ofstream out(path_, std::ios::app);
    out << R"({"data":{"job":"job-1"},"hash":"12)";  // a torn write
  }
  auto log = OpenLog();
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(*ReadFile(path_), good);
  EXPECT_TRUE(log->HasRelease("st-marys", "job-1", 1));
  EXPECT_EQ(log->CommittedRounds("job-1"), std::vector<int64_t>{1});
  auto exported = log->Export("admin");
  ASSERT_TRUE(exported.ok());
  EXPECT_TRUE(VerifyAuditExport(*exported, AuditTrail::Options{.ca_pem = ca_.pem}).ok());
}

TEST_F(AuditLogTest, RefusesToOpenATamperedLog) {
  {
    auto log = OpenLog();
    ASSERT_TRUE(log->Append("job_submitted", {{"job", "job-1"}, {"by", "alice"}}).ok());
  }
  std::string text = *ReadFile(path_);
  text.replace(text.find("alice"), 5, "mallo");
  ASSERT_TRUE(WriteFileAtomic(path_, text, 0600).ok());
  AuditLog::Identity identity{"coord", coordinator_.pem, testing::CopyKey(coordinator_.key.get()), ca_.pem};
  auto log = AuditLog::Open(path_, std::move(identity));
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(log.status().message().find("record 2"), std::string::npos) << log.status();
}

}  // namespace
}  // namespace fedattn::audit
