#include "fedattn/agent/site_ledger.h"

#include <cmath>

#include "fedattn/audit/canonical_json.h"
#include "fedattn/crypto/certificate.h"
#include "fedattn/dp/accountant.h"
#include "fedattn/storage/database.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/temp_dir.h"

namespace fedattn::agent {
namespace {

using ::testing::HasSubstr;

LedgerMechanism DpSgd(double q, double sigma, int64_t steps) {
  return LedgerMechanism{.sampling_rate = q, .noise_multiplier = sigma, .steps = steps, .max_grad_norm = 1.0};
}

LedgerEntry Entry(const std::string& job, int64_t round, LedgerMechanism mechanism, double cap = kUnbounded) {
  LedgerEntry e;
  e.job_id = job;
  e.round = round;
  e.dataset_id = "wdbc-a";
  e.mechanism = std::move(mechanism);
  e.delta = 1e-5;
  e.epsilon_cap = cap;
  e.cap_delta = 1e-5;
  e.update_sha256 = std::string(64, 'a');
  e.model_sha256 = std::string(64, 'b');
  return e;
}

// The accountant run directly on a history, the reference for every cumulative epsilon.
double Reference(const std::vector<dp::GaussianSteps>& history, double delta) {
  auto accountant = dp::RdpAccountant::Create();
  for (const dp::GaussianSteps& steps : history) EXPECT_TRUE(accountant->Compose(steps).ok());
  return accountant->GetEpsilon(delta)->epsilon;
}

class SiteLedgerTest : public ::testing::Test {
 protected:
  std::unique_ptr<SiteLedger> Open() {
    auto ledger = SiteLedger::Open(dir_ / "ledger.db", &clock_);
    EXPECT_TRUE(ledger.ok()) << ledger.status();
    return std::move(*ledger);
  }
  testing::TempDir dir_;
  FakeClock clock_;
};

TEST_F(SiteLedgerTest, NothingReleasedMeansNothingSpent) {
  auto ledger = Open();
  EXPECT_EQ(*ledger->SpentEpsilon(1e-5), 0.0);
  auto summary = ledger->Summary(1e-5);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->epsilon_total, 0.0);
}

TEST_F(SiteLedgerTest, CumulativeEpsilonIsTheAccountantOnTheWholeHistory) {
  auto ledger = Open();
  // Two jobs, rounds with different q, sigma and steps: one history for the site.
  const std::vector<std::pair<std::string, LedgerMechanism>> releases = {
      {"job-a", DpSgd(0.2, 1.0, 25)}, {"job-a", DpSgd(0.2, 1.0, 25)}, {"job-b", DpSgd(0.05, 0.8, 100)},
      {"job-a", DpSgd(0.21, 1.2, 30)}};
  std::vector<dp::GaussianSteps> history;
  int64_t round = 0;
  for (const auto& [job, mechanism] : releases) {
    history.push_back({mechanism.sampling_rate, mechanism.noise_multiplier, mechanism.steps});
    auto projection = ledger->ProjectSpend(mechanism, 1e-5, 1e-5);
    ASSERT_TRUE(projection.ok()) << projection.status();
    auto entry = ledger->RecordRelease(Entry(job, round++, mechanism));
    ASSERT_TRUE(entry.ok()) << entry.status();
    EXPECT_DOUBLE_EQ(entry->epsilon_cumulative, Reference(history, 1e-5));
    EXPECT_DOUBLE_EQ(entry->epsilon_release, Reference({history.back()}, 1e-5));
    EXPECT_DOUBLE_EQ(projection->epsilon_cumulative_after, entry->epsilon_cumulative);
    EXPECT_DOUBLE_EQ(projection->epsilon_release, entry->epsilon_release);
    EXPECT_EQ(entry->accountant, "rdp");
    EXPECT_EQ(entry->accountant_version, kLedgerAccountantVersion);
    EXPECT_EQ(entry->order_grid, kLedgerOrderGrid);
    EXPECT_EQ(entry->decision, LedgerDecision::kReleased);
    EXPECT_EQ(entry->created_unix_ms, absl::ToUnixMillis(clock_.Now()));
  }
  EXPECT_DOUBLE_EQ(*ledger->SpentEpsilon(1e-5), Reference(history, 1e-5));
  EXPECT_DOUBLE_EQ(*ledger->SpentEpsilon(1e-6), Reference(history, 1e-6));

  auto summary = ledger->Summary(1e-5);
  ASSERT_TRUE(summary.ok()) << summary.status();
  ASSERT_EQ(summary->jobs.size(), 2u);
  EXPECT_EQ(summary->jobs[0].job_id, "job-a");
  EXPECT_EQ(summary->jobs[0].releases, 3);
  EXPECT_DOUBLE_EQ(summary->jobs[0].epsilon, Reference({history[0], history[1], history[3]}, 1e-5));
  EXPECT_EQ(summary->jobs[1].job_id, "job-b");
  EXPECT_DOUBLE_EQ(summary->jobs[1].epsilon, Reference({history[2]}, 1e-5));
  EXPECT_DOUBLE_EQ(summary->epsilon_total, Reference(history, 1e-5));
  // Composition beats adding the jobs' epsilons.
  EXPECT_LT(summary->epsilon_total, summary->jobs[0].epsilon + summary->jobs[1].epsilon);
}

TEST_F(SiteLedgerTest, ReopeningKeepsEntriesAndTheHistory) {
  double spent = 0;
  {
    auto ledger = Open();
    ASSERT_TRUE(ledger->RecordRelease(Entry("j", 0, DpSgd(0.1, 1.1, 40))).ok());
    ASSERT_TRUE(ledger->RecordRefusal([] {
      LedgerEntry e = Entry("j", 1, DpSgd(0.1, 1.1, 40));
      e.reason = "over the cap";
      return e;
    }()).ok());
    ASSERT_TRUE(ledger->RecordRelease(Entry("j", 2, DpSgd(0.1, 1.1, 40))).ok());
    spent = *ledger->SpentEpsilon(1e-5);
  }
  auto ledger = Open();
  auto entries = ledger->Entries();
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0].id + 1, (*entries)[1].id);
  EXPECT_EQ((*entries)[1].decision, LedgerDecision::kRefused);
  EXPECT_EQ((*entries)[1].reason, "over the cap");
  EXPECT_EQ((*entries)[2].mechanism.steps, 40);
  EXPECT_EQ((*entries)[2].mechanism.max_grad_norm, 1.0);
  EXPECT_EQ((*entries)[2].update_sha256, std::string(64, 'a'));
  EXPECT_EQ((*entries)[2].dataset_id, "wdbc-a");
  EXPECT_TRUE(std::isinf((*entries)[2].epsilon_cap));
  EXPECT_DOUBLE_EQ(*ledger->SpentEpsilon(1e-5), spent);
  EXPECT_DOUBLE_EQ(spent, Reference({{0.1, 1.1, 40}, {0.1, 1.1, 40}}, 1e-5));  // the refusal spent nothing
  // The file is a versioned SQLite database in WAL mode.
  auto db = storage::Database::Open(dir_ / "ledger.db");
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(*(*db)->SchemaVersion(), 2);
}

TEST_F(SiteLedgerTest, ALongHistoryComposesExactlyAfterReopening) {
  std::vector<dp::GaussianSteps> history;
  {
    auto ledger = Open();
    for (int64_t round = 0; round < 60; ++round) {
      // Two jobs interleaved, each with its own (q, sigma), and a varying number of steps.
      const bool a = round % 2 == 0;
      const LedgerMechanism m = a ? DpSgd(0.21, 2.3, 15 + round % 3) : DpSgd(0.098, 1.2, 11);
      ASSERT_TRUE(ledger->RecordRelease(Entry(a ? "a" : "b", round, m)).ok());
      history.push_back({m.sampling_rate, m.noise_multiplier, m.steps});
    }
  }
  auto ledger = Open();
  EXPECT_DOUBLE_EQ(*ledger->SpentEpsilon(1e-5), Reference(history, 1e-5));
  auto next = ledger->ProjectSpend(DpSgd(0.21, 2.3, 15), 1e-5, 1e-5);
  history.push_back({0.21, 2.3, 15});
  EXPECT_DOUBLE_EQ(next->epsilon_cumulative_after, Reference(history, 1e-5));
}

TEST_F(SiteLedgerTest, ARoundIsNeverChargedTwice) {
  auto ledger = Open();
  auto first = ledger->RecordRelease(Entry("j", 3, DpSgd(0.2, 1.0, 10)));
  ASSERT_TRUE(first.ok());
  const double spent = *ledger->SpentEpsilon(1e-5);
  auto again = ledger->RecordRelease(Entry("j", 3, DpSgd(0.2, 1.0, 10)));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("job 'j' round 3 was already released"));
  EXPECT_DOUBLE_EQ(*ledger->SpentEpsilon(1e-5), spent);
  EXPECT_EQ(ledger->Entries()->size(), 1u);
  auto found = ledger->FindRelease("j", 3);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->id, first->id);
  EXPECT_FALSE(ledger->FindRelease("j", 4)->has_value());
  EXPECT_FALSE(ledger->FindRelease("k", 3)->has_value());
  // The same round of another job is another release.
  EXPECT_TRUE(ledger->RecordRelease(Entry("k", 3, DpSgd(0.2, 1.0, 10))).ok());
  // A refused round may be released later (after the refusal, nothing was spent).
  LedgerEntry refusal = Entry("j", 5, DpSgd(0.2, 1.0, 10));
  refusal.reason = "deadline";
  ASSERT_TRUE(ledger->RecordRefusal(refusal).ok());
  EXPECT_FALSE(ledger->FindRelease("j", 5)->has_value());
  EXPECT_TRUE(ledger->RecordRelease(Entry("j", 5, DpSgd(0.2, 1.0, 10))).ok());
}

TEST_F(SiteLedgerTest, TheCapIsEnforcedAndRefusalsAreRecorded) {
  auto ledger = Open();
  const LedgerMechanism round = DpSgd(0.2, 1.0, 25);
  const double one = Reference({{0.2, 1.0, 25}}, 1e-5);
  const double two = Reference({{0.2, 1.0, 25}, {0.2, 1.0, 25}}, 1e-5);
  const double cap = (one + two) / 2;  // room for one round, not two
  ASSERT_TRUE(ledger->RecordRelease(Entry("j", 0, round, cap)).ok());
  auto projection = ledger->ProjectSpend(round, 1e-5, 1e-5);
  ASSERT_TRUE(projection.ok());
  EXPECT_GT(projection->epsilon_cumulative_after, cap);
  auto over = ledger->RecordRelease(Entry("j", 1, round, cap));
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(over.status().message()),
              HasSubstr("releasing job 'j' round 1 would bring this site's epsilon to"));
  EXPECT_EQ(ledger->Entries()->size(), 1u);  // nothing recorded by the failed release

  LedgerEntry refusal = Entry("j", 1, round, cap);
  refusal.reason = "epsilon would exceed policy.epsilon_max";
  auto refused = ledger->RecordRefusal(refusal);
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(refused->decision, LedgerDecision::kRefused);
  EXPECT_DOUBLE_EQ(refused->epsilon_cumulative, two);  // what it would have been
  EXPECT_DOUBLE_EQ(refused->epsilon_cap, cap);
  EXPECT_DOUBLE_EQ(*ledger->SpentEpsilon(1e-5), one);
  auto summary = ledger->Summary(1e-5);
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->jobs[0].releases, 1);
  EXPECT_EQ(summary->jobs[0].refusals, 1);

  LedgerEntry no_reason = Entry("j", 2, round, cap);
  EXPECT_EQ(ledger->RecordRefusal(no_reason).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SiteLedgerTest, ReleasesWithoutDpAreUnbounded) {
  auto ledger = Open();
  ASSERT_TRUE(ledger->RecordRelease(Entry("dp", 0, DpSgd(0.2, 1.0, 25))).ok());
  auto projection = ledger->ProjectSpend(LedgerMechanism::None(), 1e-5, 1e-5);
  ASSERT_TRUE(projection.ok());
  EXPECT_TRUE(std::isinf(projection->epsilon_release));
  EXPECT_TRUE(std::isinf(projection->epsilon_cumulative_after));
  // With a cap, a release without DP is refused whatever the cap.
  EXPECT_EQ(ledger->RecordRelease(Entry("plain", 0, LedgerMechanism::None(), 1e6)).status().code(),
            absl::StatusCode::kResourceExhausted);
  // Without a cap it is recorded, and from then on the site's epsilon is unbounded for good.
  auto plain = ledger->RecordRelease(Entry("plain", 0, LedgerMechanism::None()));
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_TRUE(std::isinf(plain->epsilon_release));
  EXPECT_TRUE(std::isinf(plain->epsilon_cumulative));
  EXPECT_TRUE(std::isinf(*ledger->SpentEpsilon(1e-5)));
  EXPECT_EQ(ledger->RecordRelease(Entry("dp", 1, DpSgd(0.2, 1.0, 25), 1e6)).status().code(),
            absl::StatusCode::kResourceExhausted);
  ledger.reset();
  // Stored as NULL (unbounded), read back as +inf, and still composed as such after reopening.
  ledger = Open();
  auto entries = ledger->Entries();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[1].mechanism.name, "none");
  EXPECT_TRUE(std::isinf((*entries)[1].epsilon_release));
  EXPECT_EQ((*entries)[1].mechanism.steps, 0);
  EXPECT_TRUE(std::isinf(*ledger->SpentEpsilon(1e-5)));
  auto summary = ledger->Summary(1e-5);
  EXPECT_FALSE(std::isinf(summary->jobs[0].epsilon));  // job "dp" alone stays bounded
  EXPECT_TRUE(std::isinf(summary->jobs[1].epsilon));
  EXPECT_TRUE(std::isinf(summary->epsilon_total));
}

TEST_F(SiteLedgerTest, RefusesInvalidEntries) {
  auto ledger = Open();
  auto code = [&](LedgerEntry e) { return ledger->RecordRelease(std::move(e)).status().code(); };
  EXPECT_EQ(code(Entry("", 0, DpSgd(0.2, 1, 1))), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Entry("j", -1, DpSgd(0.2, 1, 1))), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Entry("j", 0, DpSgd(0, 1, 1))), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Entry("j", 0, DpSgd(1.5, 1, 1))), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Entry("j", 0, DpSgd(0.2, 0, 1))), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Entry("j", 0, DpSgd(0.2, 1, 0))), absl::StatusCode::kInvalidArgument);
  LedgerMechanism no_clip = DpSgd(0.2, 1, 1);
  no_clip.max_grad_norm = 0;
  EXPECT_EQ(code(Entry("j", 0, no_clip)), absl::StatusCode::kInvalidArgument);
  LedgerMechanism unknown = DpSgd(0.2, 1, 1);
  unknown.name = "laplace";
  EXPECT_EQ(code(Entry("j", 0, unknown)), absl::StatusCode::kInvalidArgument);
  LedgerEntry bad_delta = Entry("j", 0, DpSgd(0.2, 1, 1));
  bad_delta.delta = 1;
  EXPECT_EQ(code(bad_delta), absl::StatusCode::kInvalidArgument);
  LedgerEntry no_dataset = Entry("j", 0, DpSgd(0.2, 1, 1));
  no_dataset.dataset_id.clear();
  EXPECT_EQ(code(no_dataset), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger->ProjectSpend(DpSgd(0.2, 1, 1), 0, 1e-5).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger->Entries()->size(), 0u);
}

TEST_F(SiteLedgerTest, ClientLevelParametersAreRecorded) {
  auto ledger = Open();
  LedgerMechanism mechanism = DpSgd(0.2, 1.0, 5);
  mechanism.client_clip_norm = 2.0;
  mechanism.client_noise_multiplier = 0.5;
  ASSERT_TRUE(ledger->RecordRelease(Entry("j", 0, mechanism)).ok());
  ASSERT_TRUE(ledger->RecordRelease(Entry("j", 1, DpSgd(0.2, 1.0, 5))).ok());
  auto entries = ledger->Entries();
  EXPECT_EQ((*entries)[0].mechanism.client_clip_norm, 2.0);
  EXPECT_EQ((*entries)[0].mechanism.client_noise_multiplier, 0.5);
  EXPECT_EQ((*entries)[1].mechanism.client_clip_norm, 0.0);
}


// With the site's identity, every entry is signed as recorded, in the canonical bytes of
// docs/formats/ledger.md, with the row id as its sequence number.
TEST_F(SiteLedgerTest, EntriesAreSignedWithTheSitesKeyAndCarryItsIdentity) {
  auto key = crypto::GenerateEd25519Key();
  ASSERT_TRUE(key.ok());
  EVP_PKEY_up_ref(key->get());
  auto ledger = SiteLedger::Open(dir_ / "ledger.db", &clock_,
                                 LedgerSigner{"st-marys", std::string(64, 'f'), crypto::PKeyPtr(key->get())});
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  ASSERT_TRUE((*ledger)->RecordRelease(Entry("j", 1, DpSgd(0.1, 1.1, 40), 8)).ok());
  ASSERT_TRUE((*ledger)->RecordRefusal([] {
    LedgerEntry e = Entry("j", 2, DpSgd(0.1, 1.1, 40), 8);
    e.reason = "over the cap";
    return e;
  }()).ok());
  auto entries = (*ledger)->SignedEntries();
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const SignedLedgerEntry& e = (*entries)[i];
    EXPECT_EQ(e.entry.id, i + 1);
    EXPECT_EQ(e.entry.site_name, "st-marys");
    EXPECT_EQ(*audit::CanonicalLedgerEntry(e.entry), e.canonical);
    EXPECT_TRUE(audit::VerifyCanonical(key->get(), audit::kLedgerEntryDomain, e.canonical, e.signature).ok());
    EXPECT_FALSE(e.receipt.has_value());
  }
  // A receipt stored for the first: only the second is still unacknowledged.
  ASSERT_TRUE((*ledger)->StoreReceipt(1, audit::Receipt{"{}", std::string(128, '0'), 7}, "pem").ok());
  auto pending = (*ledger)->SignedEntries(/*unacknowledged_only=*/true);
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].entry.id, 2);
  auto all = (*ledger)->SignedEntries();
  EXPECT_EQ((*all)[0].receipt->log_seq, 7);
  EXPECT_EQ((*all)[0].coordinator_certificate_pem, "pem");
}

TEST_F(SiteLedgerTest, RowsRecordedWithoutASignerAreSignedWhenOpenedWithOne) {
  ASSERT_TRUE(Open()->RecordRelease(Entry("j", 1, DpSgd(0.1, 1.1, 40))).ok());
  auto key = crypto::GenerateEd25519Key();
  EVP_PKEY_up_ref(key->get());
  auto ledger = SiteLedger::Open(dir_ / "ledger.db", &clock_,
                                 LedgerSigner{"st-marys", std::string(64, 'f'), crypto::PKeyPtr(key->get())});
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  auto entries = (*ledger)->SignedEntries();
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].entry.site_name, "st-marys");
  EXPECT_TRUE(audit::VerifyCanonical(key->get(), audit::kLedgerEntryDomain, (*entries)[0].canonical,
                                     (*entries)[0].signature)
                  .ok());
}

}  // namespace
}  // namespace fedattn::agent
