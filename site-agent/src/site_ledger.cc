#include "fedattn/agent/site_ledger.h"

#include <algorithm>

#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/dp/accountant.h"
#include "fedattn/dp/rdp.h"
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
};

constexpr char kColumns[] =
    "id, job_id, round, dataset_id, mechanism, sampling_rate, noise_multiplier, steps, max_grad_norm, "
    "client_clip_norm, client_noise_multiplier, delta, accountant, accountant_version, order_grid, "
    "epsilon_release, epsilon_cumulative, epsilon_cap, cap_delta, decision, reason, update_sha256, "
    "model_sha256, created_unix_ms";

absl::Status CheckDelta(double delta, absl::string_view what) {
  if (!(delta > 0 && delta < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " must be in (0, 1), got ", delta));
  }
  return absl::OkStatus();
}

absl::Status ValidateMechanism(const LedgerMechanism& m) {
  if (m.name == "none") return absl::OkStatus();
  if (m.name != "poisson_gaussian") {
    return absl::InvalidArgumentError(
        absl::StrCat("ledger: mechanism must be poisson_gaussian or none, got '", m.name, "'"));
  }
  if (!(m.sampling_rate > 0 && m.sampling_rate <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("ledger: sampling rate q must be in (0, 1], got ", m.sampling_rate));
  }
  if (!(m.noise_multiplier > 0 && std::isfinite(m.noise_multiplier))) {
    return absl::InvalidArgumentError(absl::StrCat("ledger: noise multiplier must be > 0, got ", m.noise_multiplier));
  }
  if (m.steps < 1) return absl::InvalidArgumentError(absl::StrCat("ledger: steps must be >= 1, got ", m.steps));
  if (!(m.max_grad_norm > 0 && std::isfinite(m.max_grad_norm))) {
    return absl::InvalidArgumentError(absl::StrCat("ledger: max_grad_norm C must be > 0, got ", m.max_grad_norm));
  }
  if (m.client_clip_norm < 0 || m.client_noise_multiplier < 0) {
    return absl::InvalidArgumentError("ledger: client-level S and z must be >= 0");
  }
  return absl::OkStatus();
}

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

// RdpAccountant::Compose's arithmetic (total[i] += per_step[i] * steps, in history order), so
// the result is bit for bit the accountant's on the same rows; what it saves is recomputing the
// per-step RDP (156 orders, ~10 ms) for every row: rounds of a job share (q, sigma).
class SiteLedger::History {
 public:
  History() : orders_(dp::DefaultRdpOrders()), rdp_(orders_.size(), 0.0) {}

  // REQUIRES: ValidateMechanism(m) is OK.
  absl::Status Add(const LedgerMechanism& m) {
    if (m.unbounded()) {
      unbounded_ = true;
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(const std::vector<double>* per_step, PerStep(m));
    for (size_t i = 0; i < rdp_.size(); ++i) rdp_[i] += (*per_step)[i] * static_cast<double>(m.steps);
    return absl::OkStatus();
  }

  // Epsilon at `delta` of `m` alone (the per-step cache of this history is reused).
  absl::StatusOr<double> Alone(double delta, const LedgerMechanism& m) const {
    RETURN_IF_ERROR(CheckDelta(delta, "delta"));
    if (m.unbounded()) return kUnbounded;
    ASSIGN_OR_RETURN(const std::vector<double>* per_step, PerStep(m));
    std::vector<double> total(orders_.size(), 0.0);
    for (size_t i = 0; i < total.size(); ++i) total[i] += (*per_step)[i] * static_cast<double>(m.steps);
    ASSIGN_OR_RETURN(dp::PrivacyGuarantee guarantee, dp::EpsilonFromRdp(orders_, total, delta));
    return guarantee.epsilon;
  }

  // Epsilon at `delta` of the history, with `extra` composed on top when not null.
  absl::StatusOr<double> Epsilon(double delta, const LedgerMechanism* extra) const {
    RETURN_IF_ERROR(CheckDelta(delta, "delta"));
    if (unbounded_ || (extra != nullptr && extra->unbounded())) return kUnbounded;
    // Nothing released: nothing spent (the conversion would give its floor, log(1/delta)/(a-1)
    // at the largest order, which is not a spend).
    const bool nothing = std::all_of(rdp_.begin(), rdp_.end(), [](double value) { return value == 0; });
    if (nothing && extra == nullptr) return 0.0;
    std::vector<double> total = rdp_;
    if (extra != nullptr) {
      ASSIGN_OR_RETURN(const std::vector<double>* per_step, PerStep(*extra));
      for (size_t i = 0; i < total.size(); ++i) total[i] += (*per_step)[i] * static_cast<double>(extra->steps);
    }
    ASSIGN_OR_RETURN(dp::PrivacyGuarantee guarantee, dp::EpsilonFromRdp(orders_, total, delta));
    return guarantee.epsilon;
  }

 private:
  absl::StatusOr<const std::vector<double>*> PerStep(const LedgerMechanism& m) const {
    const std::pair<double, double> key(m.sampling_rate, m.noise_multiplier);
    auto it = per_step_.find(key);
    if (it == per_step_.end()) {
      std::vector<double> values(orders_.size());
      for (size_t i = 0; i < orders_.size(); ++i) {
        ASSIGN_OR_RETURN(values[i], dp::SubsampledGaussianRdp(m.sampling_rate, m.noise_multiplier, orders_[i]));
      }
      it = per_step_.emplace(key, std::move(values)).first;
    }
    return &it->second;
  }

  std::vector<double> orders_;
  std::vector<double> rdp_;
  bool unbounded_ = false;  // some release had no sample-level DP
  mutable std::map<std::pair<double, double>, std::vector<double>> per_step_;
};

SiteLedger::SiteLedger(std::unique_ptr<storage::Database> db, const Clock* clock, std::unique_ptr<History> history)
    : db_(std::move(db)), clock_(clock), history_(std::move(history)) {}

SiteLedger::~SiteLedger() = default;

absl::StatusOr<std::unique_ptr<SiteLedger>> SiteLedger::Open(const std::filesystem::path& path, const Clock* clock) {
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
  return std::unique_ptr<SiteLedger>(new SiteLedger(std::move(db), clock, std::move(history)));
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
  entry.created_unix_ms = absl::ToUnixMillis(clock_->Now());

  const bool dp = !entry.mechanism.unbounded();
  const bool client = entry.mechanism.client_clip_norm > 0;
  RETURN_IF_ERROR(db_->InTransaction([&]() -> absl::Status {
    if (release) {
      ASSIGN_OR_RETURN(storage::Statement find,
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
                                               "?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)")));
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
    RETURN_IF_ERROR(insert.Run());
    ASSIGN_OR_RETURN(storage::Statement last, db_->Prepare("SELECT last_insert_rowid()"));
    ASSIGN_OR_RETURN(bool row, last.Step());
    if (row) entry.id = last.ColumnInt(0);
    return absl::OkStatus();
  }));
  // Only a committed release joins the history.
  if (release) RETURN_IF_ERROR(history_->Add(entry.mechanism));
  return entry;
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
