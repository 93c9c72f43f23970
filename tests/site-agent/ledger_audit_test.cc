#include "fedattn/agent/ledger_audit.h"

#include <gtest/gtest.h>

#include "absl/strings/str_split.h"
#include "audit_log_link.h"
#include "common/audit/audit_test_identities.h"
#include "fedattn/agent/ledger_sync.h"
#include "fedattn/audit/audit_log.h"
#include "fedattn/audit/canonical_json.h"
#include "util/temp_dir.h"

namespace fedattn::agent {
namespace {

using audit::testing::CopyKey;
using audit::testing::MakeParty;
using audit::testing::Party;


// A site with three entries (two logged, one not yet), and the coordinator's export.
class LedgerAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = MakeParty("ca", crypto::PartyRole::kCa, nullptr);
    coordinator_ = MakeParty("coord", crypto::PartyRole::kCoordinator, &ca_);
    site_ = MakeParty("st-marys", crypto::PartyRole::kSite, &ca_);
    auto log = *audit::AuditLog::Open(dir_.path() / "audit.jsonl",
                                      {"coord", coordinator_.pem, CopyKey(coordinator_.key.get()), ca_.pem});
    ledger_ = *SiteLedger::Open(dir_.path() / "ledger.db", RealClock::Get(),
                                LedgerSigner{"st-marys", site_.fingerprint, CopyKey(site_.key.get())});
    testing::AuditLogLink link(log.get(), site_.pem);
    for (int round = 1; round <= 2; ++round) {
      Release(round);
      ASSERT_TRUE(SyncLedger(*ledger_, link, "st-marys", ca_.pem).ok());
    }
    export_ = *log->Export("auditor");
    Release(3);  // recorded, not sent
  }

  void Release(int64_t round) {
    LedgerEntry e;
    e.job_id = "job-1";
    e.round = round;
    e.dataset_id = "sha256:data";
    e.mechanism = LedgerMechanism{.sampling_rate = 0.2, .noise_multiplier = 1.0, .steps = 5, .max_grad_norm = 1};
    e.delta = 1e-5;
    ASSERT_TRUE(ledger_->RecordRelease(e).ok());
  }

  LedgerComparison Compare(const std::string& text) {
    auto comparison = CompareLedgerWithExport(*ledger_->SignedEntries(), "st-marys", text, ca_.pem);
    EXPECT_TRUE(comparison.ok()) << comparison.status();
    return *comparison;
  }

  // The export with `edit` applied to the ledger-entry record of `seq` (hashes left stale: only
  // the comparison is under test here, verification is audit_trail_test's).
  std::string Edited(int64_t seq, const std::function<void(nlohmann::json&)>& edit) {
    std::string out;
    for (absl::string_view line : absl::StrSplit(export_, '\n', absl::SkipEmpty())) {
      nlohmann::json record = nlohmann::json::parse(line);
      if (record["type"] == "ledger_entry" && record["data"]["entry"]["seq"] == seq) edit(record);
      out += (record.is_null() ? std::string() : *audit::CanonicalJson(record)) + "\n";
    }
    return out;
  }

  fedattn::testing::TempDir dir_;
  Party ca_, coordinator_, site_;
  std::unique_ptr<SiteLedger> ledger_;
  std::string export_;
};

TEST_F(LedgerAuditTest, AFaithfulExportMatchesAndTheUnsentEntryIsOnlyNoted) {
  const LedgerComparison comparison = Compare(export_);
  EXPECT_TRUE(comparison.export_verification.ok()) << comparison.export_verification;
  EXPECT_EQ(comparison.entries_matched, 2);
  ASSERT_EQ(comparison.findings.size(), 1u);
  EXPECT_EQ(comparison.findings[0].kind, "unacknowledged");
  EXPECT_EQ(comparison.findings[0].seq, 3);
  EXPECT_TRUE(comparison.clean());
}

TEST_F(LedgerAuditTest, AnUnderCountIsNamed) {
  const LedgerComparison comparison = Compare(Edited(2, [](nlohmann::json& record) {
    auto& epsilon = record["data"]["entry"]["epsilon"];
    epsilon["cumulative"] = epsilon["cumulative"].get<double>() * 0.9;
  }));
  EXPECT_FALSE(comparison.clean());
  bool found = false;
  for (const LedgerFinding& finding : comparison.findings) found |= finding.kind == "under-counted" && finding.seq == 2;
  EXPECT_TRUE(found);
}

TEST_F(LedgerAuditTest, AMissingEntryIsProvedByItsReceiptAndAForeignOneIsUnknown) {
  // Entry 1 dropped; entry 2 renumbered 7: 1 is missing (the site holds a receipt), 2 is
  // missing too, and 7 is not the site's.
  std::string text;
  for (absl::string_view line : absl::StrSplit(export_, '\n', absl::SkipEmpty())) {
    nlohmann::json record = nlohmann::json::parse(line);
    if (record["type"] == "ledger_entry" && record["data"]["entry"]["seq"] == 1) continue;
    if (record["type"] == "ledger_entry" && record["data"]["entry"]["seq"] == 2) record["data"]["entry"]["seq"] = 7;
    text += *audit::CanonicalJson(record) + "\n";
  }
  const LedgerComparison comparison = Compare(text);
  EXPECT_FALSE(comparison.export_verification.ok());
  std::map<int64_t, std::string> kinds;
  for (const LedgerFinding& finding : comparison.findings) kinds[finding.seq] = finding.kind;
  EXPECT_EQ(kinds[1], "missing");
  EXPECT_EQ(kinds[2], "missing");
  EXPECT_EQ(kinds[7], "unknown");
  EXPECT_FALSE(comparison.clean());
  for (const LedgerFinding& finding : comparison.findings) {
    if (finding.seq == 1) EXPECT_NE(finding.detail.find("signed a receipt"), std::string::npos) << finding.detail;
  }
}

}  // namespace
}  // namespace fedattn::agent
