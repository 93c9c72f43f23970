#include "fedattn/coordinator/job_store.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "fedattn/common/files.h"
#include "fedattn/common/status_macros.h"

namespace fedattn::coordinator {
namespace {

// The jobs schema. Append new versions; never edit a released one.
constexpr storage::Migration kJobStoreMigrations[] = {
    {1, "jobs and rounds",
     "CREATE TABLE jobs ("
     "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
     "  id TEXT NOT NULL UNIQUE,"
     "  name TEXT NOT NULL,"
     "  config TEXT NOT NULL,"
     "  state TEXT NOT NULL,"
     "  rounds INTEGER NOT NULL,"
     "  committed_rounds INTEGER NOT NULL DEFAULT 0,"
     "  submitted_ms INTEGER NOT NULL,"
     "  finished_ms INTEGER,"
     "  error TEXT NOT NULL DEFAULT '',"
     "  submitted_by TEXT NOT NULL DEFAULT ''"
     ");"
     "CREATE TABLE rounds ("
     "  job_id TEXT NOT NULL,"
     "  round INTEGER NOT NULL,"
     "  state TEXT NOT NULL,"
     "  started_ms INTEGER NOT NULL,"
     "  finished_ms INTEGER,"
     "  train_metrics TEXT NOT NULL DEFAULT '{}',"
     "  validation_metrics TEXT NOT NULL DEFAULT '{}',"
     "  error TEXT NOT NULL DEFAULT '',"
     "  model_sha256 TEXT NOT NULL DEFAULT '',"
     "  PRIMARY KEY (job_id, round)"
     ");"
     "CREATE TABLE round_sites ("
     "  job_id TEXT NOT NULL,"
     "  round INTEGER NOT NULL,"
     "  site TEXT NOT NULL,"
     "  status TEXT NOT NULL,"
     "  reason TEXT NOT NULL DEFAULT '',"
     "  num_examples INTEGER NOT NULL DEFAULT 0,"
     "  epsilon_spent REAL NOT NULL DEFAULT 0,"
     "  epsilon_cumulative REAL NOT NULL DEFAULT 0,"
     "  PRIMARY KEY (job_id, round, site)"
     ");"},
};

constexpr char kSelectJobs[] =
    "SELECT id, name, config, state, rounds, committed_rounds, submitted_ms, finished_ms, error, submitted_by"
    " FROM jobs";

JobRecord ReadJob(const storage::Statement& row) {
  JobRecord job;
  job.id = row.ColumnText(0);
  job.name = row.ColumnText(1);
  job.config = row.ColumnText(2);
  job.state = row.ColumnText(3);
  job.rounds = row.ColumnInt(4);
  job.committed_rounds = row.ColumnInt(5);
  job.submitted = absl::FromUnixMillis(row.ColumnInt(6));
  if (!row.ColumnIsNull(7)) job.finished = absl::FromUnixMillis(row.ColumnInt(7));
  job.error = row.ColumnText(8);
  job.submitted_by = row.ColumnText(9);
  return job;
}

std::string MetricsJson(const MetricMap& metrics) {
  nlohmann::json json = nlohmann::json::object();
  for (const auto& [name, value] : metrics) json[name] = value;
  return json.dump();
}

MetricMap ParseMetrics(const std::string& text) {
  MetricMap metrics;
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return metrics;
  for (const auto& [name, value] : json.items()) {
    if (value.is_number()) metrics[name] = value.get<double>();
  }
  return metrics;
}

}  // namespace

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(const std::filesystem::path& state_dir) {
  RETURN_IF_ERROR(EnsureDirectory(state_dir, 0700));
  ASSIGN_OR_RETURN(std::unique_ptr<storage::Database> db, storage::Database::Open(state_dir / "jobs.db"));
  RETURN_IF_ERROR(db->Migrate(kJobStoreMigrations));
  return std::unique_ptr<JobStore>(new JobStore(std::move(db)));
}

absl::StatusOr<std::string> JobStore::CreateJob(const std::string& name, const std::string& config, int64_t rounds,
                                                const std::string& submitted_by, absl::Time now) {
  absl::MutexLock lock(&mu_);
  std::string id;
  RETURN_IF_ERROR(db_->InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    ASSIGN_OR_RETURN(storage::Statement next, db_->Prepare("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs"));
    ASSIGN_OR_RETURN(bool has_row, next.Step());
    const int64_t seq = has_row ? next.ColumnInt(0) : 1;
    id = absl::StrCat(name, "-", seq);
    ASSIGN_OR_RETURN(storage::Statement insert,
                     db_->Prepare("INSERT INTO jobs (seq, id, name, config, state, rounds, submitted_ms, submitted_by)"
                                  " VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6, ?7)"));
    insert.Bind(1, seq).Bind(2, id).Bind(3, name).Bind(4, config).Bind(5, rounds).Bind(6, absl::ToUnixMillis(now))
        .Bind(7, submitted_by);
    return insert.Run();
  }));
  return id;
}

absl::Status JobStore::SetJobState(const std::string& job_id, const std::string& state, const std::string& error,
                                   absl::Time now) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(storage::Statement update,
                   db_->Prepare("UPDATE jobs SET state = ?2, error = ?3,"
                                " finished_ms = CASE WHEN ?2 IN ('completed', 'failed', 'cancelled') THEN ?4"
                                " ELSE NULL END WHERE id = ?1"));
  update.Bind(1, job_id).Bind(2, state).Bind(3, error).Bind(4, absl::ToUnixMillis(now));
  return update.Run();
}

absl::StatusOr<JobRecord> JobStore::GetJob(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(storage::Statement select, db_->Prepare(absl::StrCat(kSelectJobs, " WHERE id = ?1")));
  select.Bind(1, job_id);
  ASSIGN_OR_RETURN(bool found, select.Step());
  if (!found) return absl::NotFoundError(absl::StrCat("no job '", job_id, "'"));
  return ReadJob(select);
}

absl::StatusOr<std::vector<JobRecord>> JobStore::ListJobs() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(storage::Statement select, db_->Prepare(absl::StrCat(kSelectJobs, " ORDER BY seq")));
  std::vector<JobRecord> jobs;
  while (true) {
    ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) break;
    jobs.push_back(ReadJob(select));
  }
  return jobs;
}

absl::Status JobStore::StartRound(const std::string& job_id, int64_t round, absl::Time now) {
  absl::MutexLock lock(&mu_);
  return db_->InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    // A committed round is never run again: its model may already be downloaded and its sites'
    // releases are charged (a caller resuming from the wrong round would otherwise erase it).
    ASSIGN_OR_RETURN(storage::Statement state,
                     db_->Prepare("SELECT state FROM rounds WHERE job_id = ?1 AND round = ?2"));
    state.Bind(1, job_id).Bind(2, round);
    ASSIGN_OR_RETURN(bool exists, state.Step());
    if (exists && state.ColumnText(0) == "committed") {
      return absl::FailedPreconditionError(
          absl::StrCat("round ", round, " of job '", job_id, "' is already committed; it cannot start again"));
    }
    ASSIGN_OR_RETURN(storage::Statement clear,
                     db_->Prepare("DELETE FROM round_sites WHERE job_id = ?1 AND round = ?2"));
    clear.Bind(1, job_id).Bind(2, round);
    RETURN_IF_ERROR(clear.Run());
    ASSIGN_OR_RETURN(
        storage::Statement upsert,
        db_->Prepare("INSERT INTO rounds (job_id, round, state, started_ms) VALUES (?1, ?2, 'training', ?3)"
                     " ON CONFLICT(job_id, round) DO UPDATE SET state = 'training', started_ms = ?3,"
                     " finished_ms = NULL, error = '', train_metrics = '{}',"
                     " validation_metrics = '{}', model_sha256 = ''"));
    upsert.Bind(1, job_id).Bind(2, round).Bind(3, absl::ToUnixMillis(now));
    return upsert.Run();
  });
}

absl::Status JobStore::SetRoundState(const std::string& job_id, int64_t round, const std::string& state,
                                     const std::string& error, absl::Time now) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(storage::Statement update,
                   db_->Prepare("UPDATE rounds SET state = ?3, error = ?4,"
                                " finished_ms = CASE WHEN ?3 = 'failed' THEN ?5 ELSE finished_ms END"
                                " WHERE job_id = ?1 AND round = ?2"));
  update.Bind(1, job_id).Bind(2, round).Bind(3, state).Bind(4, error).Bind(5, absl::ToUnixMillis(now));
  return update.Run();
}

absl::Status JobStore::PutRoundSite(const std::string& job_id, int64_t round, const RoundSiteRecord& site) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(storage::Statement upsert,
                   db_->Prepare("INSERT INTO round_sites (job_id, round, site, status, reason, num_examples,"
                                " epsilon_spent, epsilon_cumulative) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                                " ON CONFLICT(job_id, round, site) DO UPDATE SET status = ?4, reason = ?5,"
                                " num_examples = ?6, epsilon_spent = ?7, epsilon_cumulative = ?8"));
  upsert.Bind(1, job_id).Bind(2, round).Bind(3, site.site).Bind(4, site.status).Bind(5, site.reason)
      .Bind(6, site.num_examples).Bind(7, site.epsilon_spent).Bind(8, site.epsilon_cumulative);
  return upsert.Run();
}

absl::Status JobStore::CommitRound(const std::string& job_id, int64_t round, const MetricMap& train_metrics,
                                   const MetricMap& validation_metrics, const std::string& model_sha256,
                                   absl::Time now) {
  absl::MutexLock lock(&mu_);
  return db_->InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    ASSIGN_OR_RETURN(storage::Statement update_round,
                     db_->Prepare("UPDATE rounds SET state = 'committed', finished_ms = ?3, train_metrics = ?4,"
                                  " validation_metrics = ?5, model_sha256 = ?6, error = ''"
                                  " WHERE job_id = ?1 AND round = ?2"));
    update_round.Bind(1, job_id).Bind(2, round).Bind(3, absl::ToUnixMillis(now)).Bind(4, MetricsJson(train_metrics))
        .Bind(5, MetricsJson(validation_metrics)).Bind(6, model_sha256);
    RETURN_IF_ERROR(update_round.Run());
    ASSIGN_OR_RETURN(storage::Statement update_job,
                     db_->Prepare("UPDATE jobs SET committed_rounds = ?2,"
                                  " state = CASE WHEN ?2 >= rounds THEN 'completed' ELSE state END,"
                                  " finished_ms = CASE WHEN ?2 >= rounds THEN ?3 ELSE finished_ms END"
                                  " WHERE id = ?1"));
    update_job.Bind(1, job_id).Bind(2, round).Bind(3, absl::ToUnixMillis(now));
    return update_job.Run();
  });
}

absl::StatusOr<std::vector<RoundRecord>> JobStore::Rounds(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  std::vector<RoundRecord> rounds;
  ASSIGN_OR_RETURN(storage::Statement select,
                   db_->Prepare("SELECT round, state, started_ms, finished_ms, train_metrics, validation_metrics,"
                                " error, model_sha256 FROM rounds WHERE job_id = ?1 ORDER BY round"));
  select.Bind(1, job_id);
  while (true) {
    ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) break;
    RoundRecord record;
    record.round = select.ColumnInt(0);
    record.state = select.ColumnText(1);
    record.started = absl::FromUnixMillis(select.ColumnInt(2));
    if (!select.ColumnIsNull(3)) record.finished = absl::FromUnixMillis(select.ColumnInt(3));
    record.train_metrics = ParseMetrics(select.ColumnText(4));
    record.validation_metrics = ParseMetrics(select.ColumnText(5));
    record.error = select.ColumnText(6);
    record.model_sha256 = select.ColumnText(7);
    rounds.push_back(std::move(record));
  }
  ASSIGN_OR_RETURN(storage::Statement sites,
                   db_->Prepare("SELECT round, site, status, reason, num_examples, epsilon_spent, epsilon_cumulative"
                                " FROM round_sites WHERE job_id = ?1 ORDER BY round, site"));
  sites.Bind(1, job_id);
  while (true) {
    ASSIGN_OR_RETURN(bool row, sites.Step());
    if (!row) break;
    const int64_t round = sites.ColumnInt(0);
    for (RoundRecord& record : rounds) {
      if (record.round != round) continue;
      record.sites.push_back(RoundSiteRecord{sites.ColumnText(1), sites.ColumnText(2), sites.ColumnText(3),
                                             sites.ColumnInt(4), sites.ColumnDouble(5), sites.ColumnDouble(6)});
    }
  }
  return rounds;
}

}  // namespace fedattn::coordinator
