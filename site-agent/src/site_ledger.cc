#include "fedattn/agent/site_ledger.h"

#include <algorithm>

#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/dp/accountant.h"
#include "fedattn/dp/rdp.h"
#include "fedattn/audit/canonical_json.h"
#include "fedattn/storage/database.h"

namespace fedattn::agent {
namespace {

// Format: docs/jobs.md, "The site ledger". NULL epsilon = unbounded; NULL cap = no cap. The
// partial unique index is the database's own guard against charging a round twice.
constexpr storage::Migration kMigrations[] = {
    {1, "site ledger",
     R"sql(
CREATE TABLE ledger (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL,
  round INTEGER NOT NULL,
  dataset_id TEXT NOT NULL,
  mechanism TEXT NOT NULL CHECK (mechanism IN ('poisson_gaussian', 'none')),
  sampling_rate REAL,
  noise_multiplier REAL,
  steps INTEGER,
  max_grad_norm REAL,
  client_clip_norm REAL,
  client_noise_multiplier REAL,
  delta REAL NOT NULL,
  accountant TEXT NOT NULL,
  accountant_version TEXT NOT NULL,
  order_grid TEXT NOT NULL,
  epsilon_release REAL,
  epsilon_cumulative REAL,
  epsilon_cap REAL,
  cap_delta REAL NOT NULL,
  decision TEXT NOT NULL CHECK (decision IN ('released', 'refused')),
  reason TEXT NOT NULL,
  update_sha256 TEXT NOT NULL,
  model_sha256 TEXT NOT NULL,
  created_unix_ms INTEGER NOT NULL
);
CREATE UNIQUE INDEX ledger_release_once ON ledger (job_id, round) WHERE decision = 'released';
)sql"},
    {2, "signed entries and receipts",
     R"sql(
ALTER TABLE ledger ADD COLUMN site_name TEXT NOT NULL DEFAULT '';
ALTER TABLE ledger ADD COLUMN site_certificate_sha256 TEXT NOT NULL DEFAULT '';
ALTER TABLE ledger ADD COLUMN privacy_unit TEXT NOT NULL DEFAULT 'record';
ALTER TABLE ledger ADD COLUMN client_contributors INTEGER;
ALTER TABLE ledger ADD COLUMN entry_json TEXT NOT NULL DEFAULT '';
ALTER TABLE ledger ADD COLUMN signature TEXT NOT NULL DEFAULT '';
ALTER TABLE ledger ADD COLUMN receipt_json TEXT;
ALTER TABLE ledger ADD COLUMN receipt_signature TEXT;
ALTER TABLE ledger ADD COLUMN receipt_log_seq INTEGER;
ALTER TABLE ledger ADD COLUMN coordinator_certificate_pem TEXT;
)sql"},
};

constexpr char kColumns[] =
    "id, job_id, round, dataset_id, mechanism, sampling_rate, noise_multiplier, steps, max_grad_norm, "
    "client_clip_norm, client_noise_multiplier, delta, accountant, accountant_version, order_grid, "
    "epsilon_release, epsilon_cumulative, epsilon_cap, cap_delta, decision, reason, update_sha256, "
    "model_sha256, created_unix_ms, site_name, site_certificate_sha256, privacy_unit, client_contributors";
// Columns 28.. of a signed-entry query.
constexpr char kSignedColumns[] =
    ", entry_json, signature, receipt_json, receipt_signature, receipt_log_seq, coordinator_certificate_pem";

using audit::CheckDelta;
using audit::ValidateMechanism;

// A real or NULL for +inf / "not used" (0 for the optional client-level fields).
void BindEpsilon(storage::Statement& stmt, int index, double value) {
  if (std::isinf(value)) {
    stmt.BindNull(index);
  } else {
    stmt.Bind(index, value);
  }
}
void BindOptional(storage::Statement& stmt, int index, double value, bool present) {
  if (present) {
    stmt.Bind(index, value);
  } else {
    stmt.BindNull(index);
  }
}
double ColumnEpsilon(const storage::Statement& stmt, int column) {
  return stmt.ColumnIsNull(column) ? kUnbounded : stmt.ColumnDouble(column);
}
double ColumnOr0(const storage::Statement& stmt, int column) {
  return stmt.ColumnIsNull(column) ? 0.0 : stmt.ColumnDouble(column);
}

LedgerEntry ReadRow(const storage::Statement& s) {
  LedgerEntry e;
  e.id = s.ColumnInt(0);
  e.job_id = s.ColumnText(1);
  e.round = s.ColumnInt(2);
  e.dataset_id = s.ColumnText(3);
  e.mechanism.name = s.ColumnText(4);
  e.mechanism.sampling_rate = ColumnOr0(s, 5);
  e.mechanism.noise_multiplier = ColumnOr0(s, 6);
  e.mechanism.steps = s.ColumnIsNull(7) ? 0 : s.ColumnInt(7);
  e.mechanism.max_grad_norm = ColumnOr0(s, 8);
  e.mechanism.client_clip_norm = ColumnOr0(s, 9);
  e.mechanism.client_noise_multiplier = ColumnOr0(s, 10);
  e.delta = s.ColumnDouble(11);
  e.accountant = s.ColumnText(12);
  e.accountant_version = s.ColumnText(13);
  e.order_grid = s.ColumnText(14);
  e.epsilon_release = ColumnEpsilon(s, 15);
  e.epsilon_cumulative = ColumnEpsilon(s, 16);
  e.epsilon_cap = ColumnEpsilon(s, 17);
  e.cap_delta = s.ColumnDouble(18);
  e.decision = s.ColumnText(19) == "released" ? LedgerDecision::kReleased : LedgerDecision::kRefused;
  e.reason = s.ColumnText(20);
  e.update_sha256 = s.ColumnText(21);
  e.model_sha256 = s.ColumnText(22);
  e.created_unix_ms = s.ColumnInt(23);
  e.site_name = s.ColumnText(24);
  e.site_certificate_sha256 = s.ColumnText(25);
  e.privacy_unit = s.ColumnText(26);
  e.mechanism.client_contributors = s.ColumnIsNull(27) ? 0 : s.ColumnInt(27);
  return e;
}

absl::StatusOr<std::vector<LedgerEntry>> Query(storage::Database& db, absl::string_view where,
                                               const std::function<void(storage::Statement&)>& bind) {
  ASSIGN_OR_RETURN(storage::Statement stmt, db.Prepare(absl::StrCat("SELECT ", kColumns, " FROM ledger ", where)));
  bind(stmt);
  std::vector<LedgerEntry> rows;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    rows.push_back(ReadRow(stmt));
  }
  return rows;
}

std::string FormatEpsilon(double epsilon) {
  return std::isinf(epsilon) ? std::string("unbounded") : absl::StrFormat("%.4g", epsilon);
}

}  // namespace

SiteLedger::SiteLedger(std::unique_ptr<storage::Database> db, const Clock* clock, std::unique_ptr<History> history,
                       std::optional<LedgerSigner> signer)
    : db_(std::move(db)), clock_(clock), history_(std::move(history)), signer_(std::move(signer)) {}

SiteLedger::~SiteLedger() = default;

absl::StatusOr<std::unique_ptr<SiteLedger>> SiteLedger::Open(const std::filesystem::path& path, const Clock* clock,
                                                             std::optional<LedgerSigner> signer) {
  ASSIGN_OR_RETURN(std::unique_ptr<storage::Database> db,
                   storage::Database::Open(path, storage::Database::Options{.wal = true, .synchronous_full = true}));
  RETURN_IF_ERROR(db->Migrate(kMigrations));
  ASSIGN_OR_RETURN(std::vector<LedgerEntry> released,
                   Query(*db, "WHERE decision = 'released' ORDER BY id", [](storage::Statement&) {}));
  auto history = std::make_unique<History>();
  for (const LedgerEntry& entry : released) {
    absl::Status status = ValidateMechanism(entry.mechanism);
    if (status.ok()) status = history->Add(entry.mechanism);
    if (!status.ok()) {
      return absl::DataLossError(absl::StrCat(path.string(), ": ledger row ", entry.id,
                                              " cannot be accounted: ", status.message()));
    }
  }
  std::unique_ptr<SiteLedger> ledger(new SiteLedger(std::move(db), clock, std::move(history), std::move(signer)));
  if (ledger->signer_.has_value()) {
    absl::MutexLock lock(&ledger->mu_);
    RETURN_IF_ERROR(ledger->SignUnsignedRows());
  }
  return ledger;
}

absl::StatusOr<SpendProjection> SiteLedger::ProjectSpend(const LedgerMechanism& mechanism, double release_delta,
                                                         double cap_delta) const {
  RETURN_IF_ERROR(ValidateMechanism(mechanism));
  RETURN_IF_ERROR(CheckDelta(release_delta, "the release's delta"));
  RETURN_IF_ERROR(CheckDelta(cap_delta, "the cap's delta"));
  SpendProjection projection;
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(projection.epsilon_release, history_->Alone(release_delta, mechanism));
  ASSIGN_OR_RETURN(projection.epsilon_cumulative_after, history_->Epsilon(cap_delta, &mechanism));
  return projection;
}

absl::StatusOr<LedgerEntry> SiteLedger::Record(LedgerEntry entry) {
  if (entry.job_id.empty()) return absl::InvalidArgumentError("ledger: job_id is required");
  if (entry.round < 0) return absl::InvalidArgumentError(absl::StrCat("ledger: round must be >= 0, got ", entry.round));
  if (entry.dataset_id.empty()) return absl::InvalidArgumentError("ledger: dataset_id is required");
  RETURN_IF_ERROR(ValidateMechanism(entry.mechanism));
  RETURN_IF_ERROR(CheckDelta(entry.delta, "ledger: delta"));
  RETURN_IF_ERROR(CheckDelta(entry.cap_delta, "ledger: cap_delta"));
  if (!(entry.epsilon_cap > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("ledger: epsilon_cap must be > 0, got ", entry.epsilon_cap));
  }
  const bool release = entry.decision == LedgerDecision::kReleased;
  ASSIGN_OR_RETURN(entry.epsilon_release, history_->Alone(entry.delta, entry.mechanism));
  ASSIGN_OR_RETURN(entry.epsilon_cumulative, history_->Epsilon(entry.cap_delta, &entry.mechanism));
  if (release) {
    if (entry.epsilon_cumulative > entry.epsilon_cap) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "releasing job '", entry.job_id, "' round ", entry.round, " would bring this site's epsilon to ",
          FormatEpsilon(entry.epsilon_cumulative), " at delta ", absl::StrFormat("%g", entry.cap_delta),
          ", above its cap ", FormatEpsilon(entry.epsilon_cap)));
    }
    entry.reason.clear();
  } else if (entry.reason.empty()) {
    return absl::InvalidArgumentError("ledger: a refusal needs a reason");
  }
  entry.accountant = kLedgerAccountant;
  entry.accountant_version = kLedgerAccountantVersion;
  entry.order_grid = kLedgerOrderGrid;
  if (signer_.has_value()) {
    entry.site_name = signer_->site_name;
    entry.site_certificate_sha256 = signer_->certificate_sha256;
  }
  entry.created_unix_ms = absl::ToUnixMillis(clock_->Now());

  const bool dp = !entry.mechanism.unbounded();
  const bool client = entry.mechanism.client_clip_norm > 0;
  RETURN_IF_ERROR(db_->InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    if (release) {
      ASSIGN_OR_RETURN(
          storage::Statement find,
          db_->Prepare("SELECT id FROM ledger WHERE job_id = ?1 AND round = ?2 AND decision = 'released'"));
      find.Bind(1, absl::string_view(entry.job_id)).Bind(2, entry.round);
      ASSIGN_OR_RETURN(bool exists, find.Step());
      if (exists) {
        return absl::AlreadyExistsError(absl::StrCat("job '", entry.job_id, "' round ", entry.round,
                                                     " was already released (ledger row ", find.ColumnInt(0),
                                                     "); it is not charged twice"));
      }
    }
    ASSIGN_OR_RETURN(storage::Statement insert,
                     db_->Prepare(absl::StrCat("INSERT INTO ledger (", absl::string_view(kColumns).substr(4),
                                               ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
                                               "?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, "
                                               "?27)")));
    insert.Bind(1, absl::string_view(entry.job_id)).Bind(2, entry.round).Bind(3, absl::string_view(entry.dataset_id));
    insert.Bind(4, absl::string_view(entry.mechanism.name));
    BindOptional(insert, 5, entry.mechanism.sampling_rate, dp);
    BindOptional(insert, 6, entry.mechanism.noise_multiplier, dp);
    if (dp) {
      insert.Bind(7, entry.mechanism.steps);
    } else {
      insert.BindNull(7);
    }
    BindOptional(insert, 8, entry.mechanism.max_grad_norm, dp);
    BindOptional(insert, 9, entry.mechanism.client_clip_norm, client);
    BindOptional(insert, 10, entry.mechanism.client_noise_multiplier, client);
    insert.Bind(11, entry.delta);
    insert.Bind(12, absl::string_view(entry.accountant)).Bind(13, absl::string_view(entry.accountant_version));
    insert.Bind(14, absl::string_view(entry.order_grid));
    BindEpsilon(insert, 15, entry.epsilon_release);
    BindEpsilon(insert, 16, entry.epsilon_cumulative);
    BindEpsilon(insert, 17, entry.epsilon_cap);
    insert.Bind(18, entry.cap_delta);
    insert.Bind(19, absl::string_view(release ? "released" : "refused"));
    insert.Bind(20, absl::string_view(entry.reason));
    insert.Bind(21, absl::string_view(entry.update_sha256)).Bind(22, absl::string_view(entry.model_sha256));
    insert.Bind(23, entry.created_unix_ms);
    insert.Bind(24, absl::string_view(entry.site_name)).Bind(25, absl::string_view(entry.site_certificate_sha256));
    insert.Bind(26, absl::string_view(entry.privacy_unit));
    if (client) {
      insert.Bind(27, entry.mechanism.client_contributors);
    } else {
      insert.BindNull(27);
    }
    RETURN_IF_ERROR(insert.Run());
    ASSIGN_OR_RETURN(storage::Statement last, db_->Prepare("SELECT last_insert_rowid()"));
    ASSIGN_OR_RETURN(bool row, last.Step());
    if (!row) return absl::InternalError("ledger: no row id after an insert");
    entry.id = last.ColumnInt(0);
    // The signed bytes carry the row id (the site's sequence number), so they are written in
    // the same transaction as the row.
    return SignRow(entry);
  }));
  // Only a committed release joins the history.
  if (release) RETURN_IF_ERROR(history_->Add(entry.mechanism));
  return entry;
}

absl::StatusOr<LedgerSigner> SignerFor(const std::string& site_name, const std::string& certificate_fingerprint,
                                       const std::string& key_pem) {
  ASSIGN_OR_RETURN(crypto::PKeyPtr key, crypto::PrivateKeyFromPem(key_pem));
  return LedgerSigner{site_name, certificate_fingerprint, std::move(key)};
}

absl::Status SiteLedger::SignRow(const LedgerEntry& entry) {
  ASSIGN_OR_RETURN(std::string canonical, audit::CanonicalLedgerEntry(entry));
  std::string signature;
  if (signer_.has_value()) {
    ASSIGN_OR_RETURN(signature, audit::SignCanonical(signer_->key.get(), audit::kLedgerEntryDomain, canonical));
  }
  ASSIGN_OR_RETURN(storage::Statement update,
                   db_->Prepare("UPDATE ledger SET entry_json = ?1, signature = ?2 WHERE id = ?3"));
  update.Bind(1, absl::string_view(canonical)).Bind(2, absl::string_view(signature)).Bind(3, entry.id);
  return update.Run();
}

absl::Status SiteLedger::SignUnsignedRows() {
  ASSIGN_OR_RETURN(std::vector<LedgerEntry> rows,
                   Query(*db_, "WHERE signature = '' ORDER BY id", [](storage::Statement&) {}));
  if (rows.empty()) return absl::OkStatus();
  return db_->InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    for (LedgerEntry& row : rows) {
      // Rows written before entries were signed: they are this site's, under its current identity.
      row.site_name = signer_->site_name;
      row.site_certificate_sha256 = signer_->certificate_sha256;
      ASSIGN_OR_RETURN(storage::Statement update,
                       db_->Prepare("UPDATE ledger SET site_name = ?1, site_certificate_sha256 = ?2 WHERE id = ?3"));
      update.Bind(1, absl::string_view(row.site_name)).Bind(2, absl::string_view(row.site_certificate_sha256));
      update.Bind(3, row.id);
      RETURN_IF_ERROR(update.Run());
      RETURN_IF_ERROR(SignRow(row));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<SignedLedgerEntry>> SiteLedger::SignedEntries(bool unacknowledged_only) const {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(storage::Statement stmt,
                   db_->Prepare(absl::StrCat("SELECT ", kColumns, kSignedColumns, " FROM ledger ",
                                             unacknowledged_only ? "WHERE receipt_json IS NULL " : "",
                                             "ORDER BY id")));
  std::vector<SignedLedgerEntry> rows;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    SignedLedgerEntry signed_entry{ReadRow(stmt), stmt.ColumnText(28), stmt.ColumnText(29), std::nullopt, ""};
    if (!stmt.ColumnIsNull(30)) {
      signed_entry.receipt = audit::Receipt{stmt.ColumnText(30), stmt.ColumnText(31), stmt.ColumnInt(32)};
      signed_entry.coordinator_certificate_pem = stmt.ColumnText(33);
    }
    rows.push_back(std::move(signed_entry));
  }
  return rows;
}

absl::Status SiteLedger::StoreReceipt(int64_t id, const audit::Receipt& receipt,
                                      absl::string_view coordinator_certificate_pem) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(storage::Statement update,
                   db_->Prepare("UPDATE ledger SET receipt_json = ?1, receipt_signature = ?2, receipt_log_seq = ?3, "
                                "coordinator_certificate_pem = ?4 WHERE id = ?5"));
  update.Bind(1, absl::string_view(receipt.json)).Bind(2, absl::string_view(receipt.signature));
  update.Bind(3, receipt.log_seq).Bind(4, coordinator_certificate_pem).Bind(5, id);
  return db_->InTransaction([&]() { return update.Run(); });
}

absl::StatusOr<LedgerEntry> SiteLedger::RecordRelease(LedgerEntry entry) {
  entry.decision = LedgerDecision::kReleased;
  absl::MutexLock lock(&mu_);
  return Record(std::move(entry));
}

absl::StatusOr<LedgerEntry> SiteLedger::RecordRefusal(LedgerEntry entry) {
  entry.decision = LedgerDecision::kRefused;
  absl::MutexLock lock(&mu_);
  return Record(std::move(entry));
}

absl::StatusOr<std::optional<LedgerEntry>> SiteLedger::FindRelease(absl::string_view job_id, int64_t round) const {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(std::vector<LedgerEntry> rows,
                   Query(*db_, "WHERE job_id = ?1 AND round = ?2 AND decision = 'released'",
                         [&](storage::Statement& s) { s.Bind(1, job_id).Bind(2, round); }));
  if (rows.empty()) return std::nullopt;
  return rows.front();
}

absl::StatusOr<std::vector<LedgerEntry>> SiteLedger::Entries() const {
  absl::MutexLock lock(&mu_);
  return Query(*db_, "ORDER BY id", [](storage::Statement&) {});
}

absl::StatusOr<double> SiteLedger::SpentEpsilon(double delta) const {
  absl::MutexLock lock(&mu_);
  return history_->Epsilon(delta, nullptr);
}

absl::StatusOr<LedgerSummary> SiteLedger::Summary(double delta) const {
  RETURN_IF_ERROR(CheckDelta(delta, "delta"));
  ASSIGN_OR_RETURN(std::vector<LedgerEntry> rows, Entries());
  LedgerSummary summary;
  summary.delta = delta;
  std::map<std::string, std::pair<size_t, History>> jobs;  // job -> (index in summary.jobs, history)
  for (const LedgerEntry& row : rows) {
    auto it = jobs.find(row.job_id);
    if (it == jobs.end()) {
      it = jobs.emplace(row.job_id, std::make_pair(summary.jobs.size(), History())).first;
      summary.jobs.push_back(LedgerSummary::Job{.job_id = row.job_id});
    }
    LedgerSummary::Job& job = summary.jobs[it->second.first];
    if (row.decision == LedgerDecision::kRefused) {
      ++job.refusals;
      continue;
    }
    ++job.releases;
    RETURN_IF_ERROR(it->second.second.Add(row.mechanism));
  }
  for (auto& [id, job] : jobs) {
    ASSIGN_OR_RETURN(summary.jobs[job.first].epsilon, job.second.Epsilon(delta, nullptr));
  }
  ASSIGN_OR_RETURN(summary.epsilon_total, SpentEpsilon(delta));
  return summary;
}

}  // namespace fedattn::agent
