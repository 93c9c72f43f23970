#include "fedattn/agent/ledger_sync.h"

#include <gtest/gtest.h>

#include "audit_log_link.h"
#include "common/audit/audit_test_identities.h"
#include "fedattn/audit/audit_log.h"
#include "util/temp_dir.h"

namespace fedattn::agent {
namespace {

using audit::testing::CopyKey;
using audit::testing::MakeParty;
using audit::testing::Party;


class LedgerSyncTest : public ::testing::Test {
 protected:
  LedgerSyncTest()
      : ca_(MakeParty("ca", crypto::PartyRole::kCa, nullptr)),
        coordinator_(MakeParty("coord", crypto::PartyRole::kCoordinator, &ca_)),
        site_(MakeParty("st-marys", crypto::PartyRole::kSite, &ca_)) {
    log_ = *audit::AuditLog::Open(dir_.path() / "audit.jsonl",
                                  {"coord", coordinator_.pem, CopyKey(coordinator_.key.get()), ca_.pem});
    ledger_ = *SiteLedger::Open(dir_.path() / "ledger.db", RealClock::Get(),
                                LedgerSigner{"st-marys", site_.fingerprint, CopyKey(site_.key.get())});
  }

  void Release(int64_t round) {
    LedgerEntry e;
    e.job_id = "job-1";
    e.round = round;
    e.dataset_id = "sha256:data";
    e.mechanism = LedgerMechanism{.sampling_rate = 0.1, .noise_multiplier = 1.1, .steps = 10, .max_grad_norm = 1};
    e.delta = 1e-5;
    ASSERT_TRUE(ledger_->RecordRelease(e).ok());
  }
  size_t Unacknowledged() { return ledger_->SignedEntries(true)->size(); }

  fedattn::testing::TempDir dir_;
  Party ca_, coordinator_, site_;
  std::unique_ptr<audit::AuditLog> log_;
  std::unique_ptr<SiteLedger> ledger_;
};

TEST_F(LedgerSyncTest, SendsUnacknowledgedEntriesInOrderAndKeepsTheReceipts) {
  Release(1);
  Release(2);
  testing::AuditLogLink link(log_.get(), site_.pem);
  ASSERT_TRUE(SyncLedger(*ledger_, link, "st-marys", ca_.pem).ok());
  EXPECT_EQ(link.calls, 2);
  EXPECT_EQ(Unacknowledged(), 0u);
  EXPECT_TRUE(log_->HasRelease("st-marys", "job-1", 1));
  EXPECT_TRUE(log_->HasRelease("st-marys", "job-1", 2));
  // Nothing left to send.
  ASSERT_TRUE(SyncLedger(*ledger_, link, "st-marys", ca_.pem).ok());
  EXPECT_EQ(link.calls, 2);
}

TEST_F(LedgerSyncTest, AFailedCallLeavesTheRestForNextTime) {
  Release(1);
  Release(2);
  testing::AuditLogLink link(log_.get(), site_.pem);
  link.fail_at = 2;
  const absl::Status status = SyncLedger(*ledger_, link, "st-marys", ca_.pem);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(status.message().find("ledger entry 2"), std::string::npos) << status;
  EXPECT_EQ(Unacknowledged(), 1u);
  ASSERT_TRUE(SyncLedger(*ledger_, link, "st-marys", ca_.pem).ok());
  EXPECT_EQ(Unacknowledged(), 0u);
}

TEST_F(LedgerSyncTest, AReceiptFromACoordinatorOfAnotherCaIsRefused) {
  Release(1);
  Party other_ca = MakeParty("ca", crypto::PartyRole::kCa, nullptr);
  testing::AuditLogLink link(log_.get(), site_.pem);
  const absl::Status status = SyncLedger(*ledger_, link, "st-marys", other_ca.pem);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
  EXPECT_EQ(Unacknowledged(), 1u);  // sent again next time, to a coordinator the site trusts
}

TEST_F(LedgerSyncTest, ALedgerWithoutTheSitesKeyCannotSync) {
  auto unsigned_ledger = *SiteLedger::Open(dir_.path() / "unsigned.db");
  LedgerEntry e;
  e.job_id = "job-1";
  e.round = 1;
  e.dataset_id = "sha256:data";
  e.mechanism = LedgerMechanism::None();
  e.delta = 1e-5;
  ASSERT_TRUE(unsigned_ledger->RecordRelease(e).ok());
  testing::AuditLogLink link(log_.get(), site_.pem);
  EXPECT_EQ(SyncLedger(*unsigned_ledger, link, "st-marys", ca_.pem).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(link.calls, 0);
}

}  // namespace
}  // namespace fedattn::agent
