// The coordinator's audit trail, record by record: checks a record as the next one of a trail
// (hash link, canonical form, signatures, every epsilon recomputed) and keeps what an auditor
// needs from it (per-site privacy histories, the budget table). The coordinator's AuditLog
// replays its file through it on start and appends through it; `fedattn audit verify` and
// `fedattn-agent audit compare` read an export with it. Format: docs/formats/audit-log.md.
//
// Thread safety: a value type, not synchronised.
#pragma once

#include <openssl/x509.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fedattn/audit/ledger_entry.h"
#include "fedattn/audit/privacy_history.h"
#include "fedattn/crypto/keys.h"
#include "nlohmann/json.hpp"

namespace fedattn::audit {

inline constexpr char kAuditFormat[] = "fedattn.audit.v1";
inline constexpr char kGenesisHash[] = "0000000000000000000000000000000000000000000000000000000000000000";
// Relative tolerance when a recorded epsilon is compared with the recomputed one.
inline constexpr double kEpsilonTolerance = 1e-9;

// One record (one line of the log), as parsed.
struct AuditRecord {
  int64_t seq = 0;
  int64_t time_unix_ms = 0;
  std::string type;
  nlohmann::json data;
  std::string prev;  // hex hash of the previous record
  std::string hash;  // hex SHA-256 of the record's canonical JSON without "hash"
};

// A ledger entry as the trail holds it.
struct LoggedEntry {
  int64_t log_seq = 0;
  LedgerEntry entry;
  std::string entry_sha256;  // of its canonical bytes
};

// One row of the budget table: a site's part in a job, and the site's total.
struct BudgetRow {
  std::string site;
  std::string job;
  int64_t releases = 0, refusals = 0;
  std::vector<int64_t> rounds;  // rounds released
  double job_epsilon = 0;       // this job's releases composed, at job_delta
  double job_delta = 0;
  double site_epsilon = 0;      // every release of the site, at cap_delta
  double cap = kUnbounded;      // the site's latest cap
  double cap_delta = 0;
  std::string mechanism;  // the job's latest mechanism, e.g. "poisson_gaussian q=0.2 sigma=2.5 C=1 steps=12"
};

class AuditTrail {
 public:
  struct Options {
    // When set, every certificate in the trail (the coordinator's, each site's) must be issued
    // by this CA and valid at the record's time.
    std::optional<std::string> ca_pem;
  };
  explicit AuditTrail(Options options = {});

  // Checks `line` (without its newline) as the next record and, when it passes, adds it.
  // Errors name the record: "record 12: <why>"; nothing is added then.
  [[nodiscard]] absl::StatusOr<AuditRecord> Add(absl::string_view line);
  // OK when the trail is non-empty and ends with a signed checkpoint (every record is covered by
  // the coordinator's signature); FAILED_PRECONDITION otherwise.
  [[nodiscard]] absl::Status CheckComplete() const;

  // Builds the canonical line of the next record (seq, prev and hash filled in).
  [[nodiscard]] absl::StatusOr<std::string> NextLine(absl::string_view type, nlohmann::json data,
                                                     int64_t time_unix_ms) const;
  // The message a checkpoint after the current head signs (docs/formats/audit-log.md).
  [[nodiscard]] absl::StatusOr<std::string> CheckpointMessage() const;

  int64_t size() const { return next_seq_; }
  const std::string& head() const { return head_; }
  bool ends_with_checkpoint() const { return last_type_ == "checkpoint"; }

  // Ledger entries logged for `site` (in its sequence order), and all of them.
  std::vector<const LoggedEntry*> EntriesOf(absl::string_view site) const;
  const std::vector<LoggedEntry>& entries() const { return entries_; }
  const LoggedEntry* FindEntry(absl::string_view site, int64_t seq) const;
  // The hex SHA-256 fingerprint of the site's logged certificate, if any.
  std::optional<std::string> SiteCertificate(absl::string_view site) const;
  bool HasRelease(absl::string_view site, absl::string_view job, int64_t round) const;

  // What `site` has spent (at its latest cap's delta), its cap, and what one more round of
  // `job` would bring it to: the job's latest mechanism composed on top (nullopt when the site
  // has not released anything in the job yet).
  struct Budget {
    double spent = 0;
    double cap = kUnbounded;
    double cap_delta = 0;
    std::optional<double> after_next_round;
  };
  [[nodiscard]] absl::StatusOr<std::optional<Budget>> BudgetOf(absl::string_view site, absl::string_view job) const;

  // The budget table, rows ordered by site then job.
  [[nodiscard]] absl::StatusOr<std::vector<BudgetRow>> BudgetTable() const;

 private:
  struct SiteState {
    std::string certificate_sha256;
    crypto::PKeyPtr public_key;
    int64_t last_seq = 0;
    PrivacyHistory history;
    double cap = kUnbounded;
    double cap_delta = 0;
  };
  struct JobState {
    int64_t releases = 0, refusals = 0;
    std::vector<int64_t> rounds;
    PrivacyHistory history;
    double delta = 0;
    std::optional<LedgerMechanism> last;
  };

  absl::Status CheckRecord(const AuditRecord& record);
  absl::Status CheckLedgerEntry(const AuditRecord& record, LoggedEntry* logged);
  absl::Status CheckCertificate(absl::string_view pem, absl::string_view expected_role, absl::string_view name,
                                int64_t time_unix_ms, crypto::PKeyPtr* public_key, std::string* fingerprint) const;

  Options options_;
  int64_t next_seq_ = 0;
  std::string head_ = kGenesisHash;
  std::string genesis_;  // the hash of record 0: the log's identity
  std::string last_type_;
  crypto::PKeyPtr coordinator_key_;
  std::map<std::string, SiteState, std::less<>> sites_;
  std::map<std::pair<std::string, std::string>, JobState> jobs_;  // (site, job)
  std::vector<LoggedEntry> entries_;
  std::set<std::tuple<std::string, std::string, int64_t>> releases_;  // (site, job, round)
};

// Reads a whole export (JSON lines) and checks it record by record, then CheckComplete().
// Errors name the first record that fails and why.
[[nodiscard]] absl::StatusOr<AuditTrail> VerifyAuditExport(absl::string_view text, AuditTrail::Options options = {});

// "poisson_gaussian q=0.2 sigma=2.5 C=1 steps=12" / "none".
std::string DescribeMechanism(const LedgerMechanism& mechanism);

}  // namespace fedattn::audit
