#include "fedattn/audit/audit_trail.h"

#include <gtest/gtest.h>

#include <random>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "audit_test_identities.h"
#include "fedattn/audit/audit_log.h"
#include "fedattn/common/files.h"
#include "util/temp_dir.h"

namespace fedattn::audit {
namespace {

using testing::MakeParty;
using testing::Party;
using testing::TestSite;

// A small real export: two sites, two jobs, a refusal, round events and checkpoints.
class AuditTrailTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = MakeParty("ca", crypto::PartyRole::kCa, nullptr);
    coordinator_ = MakeParty("coord", crypto::PartyRole::kCoordinator, &ca_);
    auto log = AuditLog::Open(dir_.path() / "audit.jsonl",
                              AuditLog::Identity{"coord", coordinator_.pem, testing::CopyKey(coordinator_.key.get()),
                                                 ca_.pem});
    ASSERT_TRUE(log.ok()) << log.status();
    TestSite a("site-a", &ca_), b("site-b", &ca_);
    ASSERT_TRUE((*log)->Append("job_submitted", {{"job", "job-1"}, {"by", "admin"}}).ok());
    for (int round = 1; round <= 2; ++round) {
      for (TestSite* site : {&a, &b}) {
        const auto e = site->Next("job-1", round, 0.2, 1.5, 10);
        ASSERT_TRUE((*log)->RecordLedgerEntry(site->name(), site->party().pem, e.canonical, e.signature).ok());
      }
      ASSERT_TRUE((*log)->Append("round_committed", {{"job", "job-1"}, {"round", round}, {"model_sha256", "cd"}}).ok());
      ASSERT_TRUE((*log)->Checkpoint().ok());
    }
    const auto refused = a.Next("job-2", 1, 0.5, 0.8, 100, /*released=*/false);
    ASSERT_TRUE((*log)->RecordLedgerEntry("site-a", a.party().pem, refused.canonical, refused.signature).ok());
    const auto other_job = b.Next("job-2", 1, 0.3, 1.0, 20);
    ASSERT_TRUE((*log)->RecordLedgerEntry("site-b", b.party().pem, other_job.canonical, other_job.signature).ok());
    auto exported = (*log)->Export("admin");
    ASSERT_TRUE(exported.ok());
    export_ = *exported;
    lines_ = absl::StrSplit(absl::string_view(export_).substr(0, export_.size() - 1), '\n');
  }

  absl::Status Verify(const std::string& text) { return VerifyAuditExport(text, {.ca_pem = ca_.pem}).status(); }
  std::string Join(const std::vector<std::string>& lines) { return absl::StrJoin(lines, "\n") + "\n"; }
  // The record a failure names ("record N: ...").
  static int64_t Named(const absl::Status& status) {
    const std::string message(status.message());
    if (message.rfind("record ", 0) != 0) return -1;
    return std::stoll(message.substr(7));
  }

  fedattn::testing::TempDir dir_;
  Party ca_, coordinator_;
  std::string export_;
  std::vector<std::string> lines_;
};

TEST_F(AuditTrailTest, AGenuineExportVerifies) {
  auto trail = VerifyAuditExport(export_, {.ca_pem = ca_.pem});
  ASSERT_TRUE(trail.ok()) << trail.status();
  EXPECT_EQ(trail->entries().size(), 6u);
  auto table = trail->BudgetTable();
  ASSERT_TRUE(table.ok());
  ASSERT_EQ(table->size(), 4u);  // (site-a, job-1), (site-a, job-2), (site-b, job-1), (site-b, job-2)
  EXPECT_EQ((*table)[0].site, "site-a");
  EXPECT_EQ((*table)[0].releases, 2);
  EXPECT_EQ((*table)[1].refusals, 1);
  EXPECT_EQ((*table)[1].job_epsilon, 0);
  EXPECT_GT((*table)[3].site_epsilon, (*table)[2].job_epsilon);
  EXPECT_EQ((*table)[0].mechanism, "poisson_gaussian q=0.2 sigma=1.5 C=1 steps=10");
}

TEST_F(AuditTrailTest, AnotherCaIsRefused) {
  Party other = MakeParty("ca", crypto::PartyRole::kCa, nullptr);
  auto status = VerifyAuditExport(export_, {.ca_pem = other.pem}).status();
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(Named(status), 0) << status;
}

TEST_F(AuditTrailTest, ChangingAnyByteIsDetectedAndTheRecordNamed) {
  std::mt19937 rng(42);
  size_t offset = 0;
  for (size_t line = 0; line < lines_.size(); ++line) {
    // Ten positions in every record, and its first and last byte.
    std::vector<size_t> positions = {0, lines_[line].size() - 1};
    for (int i = 0; i < 10; ++i) positions.push_back(rng() % lines_[line].size());
    for (size_t pos : positions) {
      std::string text = export_;
      text[offset + pos] = static_cast<char>(text[offset + pos] ^ (1 + rng() % 127));
      const absl::Status status = Verify(text);
      ASSERT_FALSE(status.ok()) << "byte " << pos << " of record " << line;
      EXPECT_EQ(Named(status), static_cast<int64_t>(line)) << status;
    }
    offset += lines_[line].size() + 1;
  }
}

TEST_F(AuditTrailTest, DeletingReorderingOrAddingRecordsIsDetected) {
  for (size_t victim : {size_t{1}, size_t{5}, lines_.size() / 2}) {
    std::vector<std::string> lines = lines_;
    lines.erase(lines.begin() + victim);
    const absl::Status status = Verify(Join(lines));
    EXPECT_EQ(Named(status), static_cast<int64_t>(victim)) << status;
  }
  std::vector<std::string> swapped = lines_;
  std::swap(swapped[4], swapped[5]);
  EXPECT_EQ(Named(Verify(Join(swapped))), 4);
  std::vector<std::string> blank = lines_;
  blank.insert(blank.begin() + 3, "");
  EXPECT_EQ(Named(Verify(Join(blank))), 3);
  // Cutting the final checkpoint leaves records no signature covers.
  std::vector<std::string> cut(lines_.begin(), lines_.end() - 1);
  const absl::Status status = Verify(Join(cut));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_FALSE(Verify(export_.substr(0, export_.size() - 1)).ok());
}

TEST_F(AuditTrailTest, ReplacedSignaturesAreDetected) {
  // The last checkpoint's signature replaced by an earlier checkpoint's (valid, for other bytes),
  // with the record's hash recomputed so that only the signature is wrong.
  auto resign = [&](size_t index, const std::string& field, const std::string& value) {
    nlohmann::json record = nlohmann::json::parse(lines_[index]);
    record["data"][field] = value;
    record.erase("hash");
    record["hash"] = Sha256Hex(*CanonicalJson(record));
    std::vector<std::string> lines = lines_;
    lines[index] = *CanonicalJson(record);
    return Join(lines);
  };
  std::vector<size_t> checkpoints, entries;
  for (size_t i = 0; i < lines_.size(); ++i) {
    const auto type = nlohmann::json::parse(lines_[i])["type"];
    if (type == "checkpoint") checkpoints.push_back(i);
    if (type == "ledger_entry") entries.push_back(i);
  }
  ASSERT_GE(checkpoints.size(), 2u);
  const std::string earlier = nlohmann::json::parse(lines_[checkpoints[0]])["data"]["signature"];
  absl::Status status = Verify(resign(checkpoints.back(), "signature", earlier));
  EXPECT_EQ(Named(status), static_cast<int64_t>(checkpoints.back())) << status;
  EXPECT_NE(status.message().find("checkpoint signature"), std::string::npos);

  const std::string other_entry_signature = nlohmann::json::parse(lines_[entries[1]])["data"]["signature"];
  status = Verify(resign(entries[0], "signature", other_entry_signature));
  EXPECT_EQ(Named(status), static_cast<int64_t>(entries[0])) << status;
  EXPECT_NE(status.message().find("site's signature"), std::string::npos) << status;
}

TEST_F(AuditTrailTest, AnEntryRemovedAndTheChainRebuiltIsStillDetected) {
  // An insider with the coordinator's key rebuilds a consistent chain without one of site-a's
  // entries: the site's sequence numbers give it away.
  AuditTrail rebuilt({.ca_pem = ca_.pem});
  std::string text;
  bool dropped = false;
  for (size_t i = 0; i < lines_.size(); ++i) {
    nlohmann::json record = nlohmann::json::parse(lines_[i]);
    if (!dropped && record["type"] == "ledger_entry" && record["data"]["site"] == "site-a") {
      dropped = true;
      continue;
    }
    std::string data_type = record["type"];
    if (data_type == "checkpoint") {
      auto message = rebuilt.CheckpointMessage();
      record["data"]["covers_seq"] = rebuilt.size() - 1;
      record["data"]["head"] = rebuilt.head();
      record["data"]["signature"] = *SignCanonical(coordinator_.key.get(), kCheckpointDomain, *message);
    }
    auto line = rebuilt.NextLine(data_type, record["data"], record["time_unix_ms"]);
    ASSERT_TRUE(line.ok());
    const auto added = rebuilt.Add(*line);
    if (!added.ok()) {
      EXPECT_NE(added.status().message().find("sequence goes from 0 to 2"), std::string::npos) << added.status();
      return;
    }
    text += *line + "\n";
  }
  FAIL() << "the rebuilt chain verified";
}

}  // namespace
}  // namespace fedattn::audit
