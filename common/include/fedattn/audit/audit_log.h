// The coordinator's append-only audit log: one canonical JSON record per line, each holding the
// hash of the one before, with checkpoints signed by the coordinator's Ed25519 key. It holds the
// sites' signed ledger entries, job and round events, admin actions and refusals; every append
// is fsync'd before it returns. Format: docs/formats/audit-log.md.
//
// Thread-safe: one mutex serialises every call.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "fedattn/audit/audit_trail.h"
#include "fedattn/common/clock.h"
#include "fedattn/crypto/keys.h"
#include "nlohmann/json.hpp"

namespace fedattn::audit {

// What the coordinator signs for a site when its ledger entry is in the log.
struct Receipt {
  std::string json;       // canonical: {entry_sha256, format, log, log_seq, site, time_unix_ms}
  std::string signature;  // hex Ed25519 over kReceiptDomain || 0 || json
  int64_t log_seq = 0;
};
inline constexpr char kReceiptFormat[] = "fedattn.receipt.v1";

// Checks a receipt against the coordinator's certificate (which must be the coordinator's and,
// when `ca_pem` is not empty, issued by that CA) and the entry it is for.
// Errors: UNAUTHENTICATED or INVALID_ARGUMENT naming what does not hold.
[[nodiscard]] absl::Status VerifyReceipt(const Receipt& receipt, absl::string_view coordinator_certificate_pem,
                                         absl::string_view ca_pem, absl::string_view site,
                                         absl::string_view entry_sha256);

class AuditLog {
 public:
  struct Identity {
    std::string coordinator;      // the coordinator's name
    std::string certificate_pem;  // its certificate (Ed25519 key)
    crypto::PKeyPtr signing_key;  // its private key
    std::string ca_pem;           // the federation's CA: every logged certificate must chain to it
  };

  // Opens the log at `path` (created 0600, its directory 0700), replays it through AuditTrail and
  // refuses (DATA_LOSS naming the record) a log that does not verify. A last line cut short by
  // a crash (never acknowledged) is cut off. A new log starts with 'log_opened' and a checkpoint.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<AuditLog>> Open(const std::filesystem::path& path,
                                                                      Identity identity,
                                                                      const Clock* clock = RealClock::Get());
  ~AuditLog();

  // Appends an event durably and returns its sequence number.
  [[nodiscard]] absl::StatusOr<int64_t> Append(absl::string_view type, nlohmann::json data);
  // Appends a signed checkpoint over the head, unless the head already is one.
  [[nodiscard]] absl::Status Checkpoint();

  // Logs a site's signed ledger entry (after its certificate, when the log does not have that
  // one yet) and returns the coordinator's receipt. Sending the same entry again returns the
  // receipt of the logged one. Errors: UNAUTHENTICATED for a bad signature, INVALID_ARGUMENT for
  // an entry that is not canonical or whose epsilon does not recompute, ALREADY_EXISTS for a
  // different entry with a sequence number already logged; nothing is logged then.
  [[nodiscard]] absl::StatusOr<Receipt> RecordLedgerEntry(absl::string_view site, absl::string_view certificate_pem,
                                                          absl::string_view canonical_entry,
                                                          absl::string_view signature_hex);

  // The coordinator's certificate, under which its receipts and checkpoints verify.
  const std::string& certificate_pem() const { return identity_.certificate_pem; }

  bool HasRelease(absl::string_view site, absl::string_view job, int64_t round) const;
  [[nodiscard]] absl::StatusOr<std::optional<AuditTrail::Budget>> BudgetOf(absl::string_view site,
                                                                           absl::string_view job) const;
  // Every round of `job` the log records as committed (and not abandoned since).
  std::vector<int64_t> CommittedRounds(absl::string_view job) const;
  // Whether the log holds `job`'s job_submitted and job_finished records.
  bool HasJobSubmitted(absl::string_view job) const;
  bool HasJobFinished(absl::string_view job) const;

  // Logs the export (by `actor`), signs the head and returns the whole log.
  [[nodiscard]] absl::StatusOr<std::string> Export(absl::string_view actor);

 private:
  AuditLog(std::filesystem::path path, Identity identity, const Clock* clock, int fd);
  absl::StatusOr<AuditRecord> AppendLocked(absl::string_view type, nlohmann::json data)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckpointLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Track(const AuditRecord& record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Receipt> ReceiptFor(const LoggedEntry& logged, int64_t time_unix_ms) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::filesystem::path path_;
  Identity identity_;
  const Clock* clock_;
  mutable absl::Mutex mu_;
  int fd_ ABSL_GUARDED_BY(mu_);
  AuditTrail trail_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, int64_t> record_times_ ABSL_GUARDED_BY(mu_);  // ledger record seq -> time
  std::map<std::string, std::vector<int64_t>, std::less<>> committed_ ABSL_GUARDED_BY(mu_);
  std::set<std::string, std::less<>> submitted_jobs_ ABSL_GUARDED_BY(mu_);
  std::set<std::string, std::less<>> finished_jobs_ ABSL_GUARDED_BY(mu_);
  absl::Status broken_ ABSL_GUARDED_BY(mu_);  // set when a write failed: the file is behind
};

}  // namespace fedattn::audit
