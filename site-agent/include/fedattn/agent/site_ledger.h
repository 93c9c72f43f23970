// The site's own privacy ledger: one row per privacy-relevant decision (a release of an update,
// or a refusal), durable in SQLite before anything leaves the site, signed with the site's
// identity key, with the coordinator's receipt once it has logged it. Entry format:
// docs/formats/ledger.md.
//
// Every row carries the mechanism's parameters (q, sigma, C, steps, delta), not only epsilon, so
// anyone can recompute epsilon: composing the released rows with dp::RdpAccountant (default
// grid) gives exactly the recorded cumulative epsilon. The site's cumulative epsilon composes EVERY release of the site
// (all jobs, all datasets: a new file version may hold the same patients) with the RDP
// accountant (dp/accountant.h) over the history of (q, sigma, steps) rows, at the cap's delta.
// A release without sample-level DP (mechanism "none") has unbounded epsilon: +infinity here,
// NULL in the database; after one, the cumulative epsilon is +infinity for good.
//
// Thread-safe: one mutex serialises every call.
#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "fedattn/audit/audit_log.h"
#include "fedattn/audit/ledger_entry.h"
#include "fedattn/audit/privacy_history.h"
#include "fedattn/common/clock.h"
#include "fedattn/crypto/keys.h"

namespace fedattn::storage {
class Database;
}

namespace fedattn::agent {

// The entry types are the audit trail's (docs/formats/ledger.md): the site's rows, signed, are
// what the coordinator logs and an auditor verifies.
using audit::kLedgerAccountant;
using audit::kLedgerAccountantVersion;
using audit::kLedgerOrderGrid;
using audit::kUnbounded;
using audit::LedgerDecision;
using audit::LedgerEntry;
using audit::LedgerMechanism;

// The site's identity, which signs every entry (fedattn.ledger-entry.v1, Ed25519).
struct LedgerSigner {
  std::string site_name;
  std::string certificate_sha256;  // hex SHA-256 of the site's certificate (DER)
  crypto::PKeyPtr key;             // the site's identity key
};

// An entry as the site keeps it: its canonical bytes, the site's signature and, once the
// coordinator has logged it, the coordinator's receipt.
struct SignedLedgerEntry {
  LedgerEntry entry;
  std::string canonical;
  std::string signature;  // empty when the ledger has no signer
  std::optional<audit::Receipt> receipt;
  std::string coordinator_certificate_pem;  // the certificate the receipt verified under
};

struct SpendProjection {
  double epsilon_release = 0;           // the mechanism alone, at the release delta
  double epsilon_cumulative_after = 0;  // the site's history plus this release, at the cap delta
};

struct LedgerSummary {
  struct Job {
    std::string job_id;
    int64_t releases = 0, refusals = 0;
    double epsilon = 0;  // this job's releases composed, at the summary's delta
  };
  std::vector<Job> jobs;  // in order of first appearance
  double epsilon_total = 0;  // every release composed, at the summary's delta
  double delta = 0;
};

// The signer of a site whose TLS identity is `key_pem` / `certificate_fingerprint`.
[[nodiscard]] absl::StatusOr<LedgerSigner> SignerFor(const std::string& site_name,
                                                   const std::string& certificate_fingerprint,
                                                   const std::string& key_pem);

class SiteLedger {
 public:
  // Opens (creating, migrating) the ledger at `path` (WAL, synchronous=FULL, mode 0600) and
  // composes the released history. `clock` (not owned, must outlive the ledger) stamps rows.
  // With a signer, every entry is signed as it is recorded (and older unsigned rows are signed
  // on open); without one (tests, central training) entries are unsigned.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SiteLedger>> Open(
      const std::filesystem::path& path, const Clock* clock = RealClock::Get(),
      std::optional<LedgerSigner> signer = std::nullopt);
  ~SiteLedger();

  // What releasing `mechanism` would cost: alone at `release_delta`, and on top of every
  // release so far at `cap_delta`. Unbounded for mechanism "none". Records nothing.
  // Errors: INVALID_ARGUMENT for invalid parameters or deltas outside (0, 1).
  [[nodiscard]] absl::StatusOr<SpendProjection> ProjectSpend(const LedgerMechanism& mechanism, double release_delta,
                                                             double cap_delta) const;

  // Records a release, durably (fsync'd commit) before returning, and returns the stored row with
  // the epsilon fields computed. Nothing is recorded when it fails: INVALID_ARGUMENT for bad
  // fields; ALREADY_EXISTS if (job_id, round) was already released (a re-sent round is never
  // charged twice: send the recorded update again); RESOURCE_EXHAUSTED when the cumulative
  // epsilon would exceed entry.epsilon_cap (record a refusal instead).
  [[nodiscard]] absl::StatusOr<LedgerEntry> RecordRelease(LedgerEntry entry);
  // Records a refusal (with its reason, required) durably; spends nothing.
  [[nodiscard]] absl::StatusOr<LedgerEntry> RecordRefusal(LedgerEntry entry);

  // The release of (job_id, round), if any.
  [[nodiscard]] absl::StatusOr<std::optional<LedgerEntry>> FindRelease(absl::string_view job_id, int64_t round) const;
  // Every row, oldest first.
  [[nodiscard]] absl::StatusOr<std::vector<LedgerEntry>> Entries() const;
  // Every entry with its canonical bytes, signature and receipt, oldest first; only those without
  // a receipt (the coordinator has not acknowledged them yet) when `unacknowledged_only`.
  [[nodiscard]] absl::StatusOr<std::vector<SignedLedgerEntry>> SignedEntries(bool unacknowledged_only = false) const;
  // Stores the coordinator's receipt for entry `id` (checked by the caller), durably.
  [[nodiscard]] absl::Status StoreReceipt(int64_t id, const audit::Receipt& receipt,
                                          absl::string_view coordinator_certificate_pem);
  // Epsilon per job and in total, at `delta`.
  [[nodiscard]] absl::StatusOr<LedgerSummary> Summary(double delta) const;
  // The site's cumulative epsilon so far at `delta` (kUnbounded after a release without DP).
  [[nodiscard]] absl::StatusOr<double> SpentEpsilon(double delta) const;

  using History = audit::PrivacyHistory;

 private:
  SiteLedger(std::unique_ptr<storage::Database> db, const Clock* clock, std::unique_ptr<History> history,
             std::optional<LedgerSigner> signer);
  absl::Status SignUnsignedRows() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the entry's canonical bytes and signature into its row (inside a transaction).
  absl::Status SignRow(const LedgerEntry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<LedgerEntry> Record(LedgerEntry entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::unique_ptr<storage::Database> db_ ABSL_GUARDED_BY(mu_);
  const Clock* clock_;
  std::unique_ptr<History> history_ ABSL_GUARDED_BY(mu_);  // every released row
  std::optional<LedgerSigner> signer_;
};

}  // namespace fedattn::agent
