#include "fedattn/storage/database.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"

namespace fedattn::storage {
namespace {

absl::Status SqliteError(sqlite3* db, absl::string_view what) {
  const int code = sqlite3_extended_errcode(db);
  const std::string message = absl::StrCat(what, ": ", sqlite3_errmsg(db));
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return absl::UnavailableError(message);
    case SQLITE_CONSTRAINT: return absl::AlreadyExistsError(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return absl::DataLossError(message);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY: return absl::PermissionDeniedError(message);
    default: return absl::InternalError(message);
  }
}

}  // namespace

Statement::Statement(sqlite3_stmt* stmt, sqlite3* db, std::string sql)
    : stmt_(stmt), db_(db), sql_(std::move(sql)) {}

Statement::Statement(Statement&& other) noexcept
    : stmt_(other.stmt_), db_(other.db_), sql_(std::move(other.sql_)) {
  other.stmt_ = nullptr;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::Bind(int index, int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}
Statement& Statement::Bind(int index, double value) {
  sqlite3_bind_double(stmt_, index, value);
  return *this;
}
Statement& Statement::Bind(int index, absl::string_view text) {
  sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::BindBlob(int index, std::span<const uint8_t> blob) {
  sqlite3_bind_blob(stmt_, index, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::BindNull(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}

absl::StatusOr<bool> Statement::Step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(db_, absl::StrCat("SQL failed (", sql_.substr(0, 60), ")"));
}

absl::Status Statement::Run() {
  while (true) {
    ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return absl::OkStatus();
  }
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t Statement::ColumnInt(int column) const { return sqlite3_column_int64(stmt_, column); }
double Statement::ColumnDouble(int column) const { return sqlite3_column_double(stmt_, column); }
bool Statement::ColumnIsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
std::string Statement::ColumnText(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  const int size = sqlite3_column_bytes(stmt_, column);
  return text == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(text), size);
}

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const std::filesystem::path& path,
                                                         const Options& options) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<Database> db(new Database(raw, path));
  if (rc != SQLITE_OK) return SqliteError(raw, absl::StrCat("cannot open database ", path.string()));
  ::chmod(path.c_str(), 0600);  // state holds site identities; keep it private to the service user
  sqlite3_busy_timeout(raw, options.busy_timeout_ms);
  RETURN_IF_ERROR(db->Exec("PRAGMA foreign_keys=ON"));
  if (options.wal) {
    ASSIGN_OR_RETURN(Statement mode, db->Prepare("PRAGMA journal_mode=WAL"));
    ASSIGN_OR_RETURN(bool row, mode.Step());
    if (!row || mode.ColumnText(0) != "wal") {
      return absl::FailedPreconditionError(absl::StrCat("cannot enable WAL journaling on ", path.string()));
    }
  }
  RETURN_IF_ERROR(db->Exec(options.synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));
  return db;
}

Database::~Database() { sqlite3_close_v2(db_); }

absl::Status Database::Error(absl::string_view what) const { return SqliteError(db_, what); }

absl::Status Database::Exec(absl::string_view sql) {
  char* message = nullptr;
  const std::string text(sql);
  if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    sqlite3_free(message);
    return Error(absl::StrCat("SQL failed on ", path_.string(), " (", text.substr(0, 60), ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Statement> Database::Prepare(absl::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) != SQLITE_OK) {
    return Error(absl::StrCat("cannot prepare SQL (", sql.substr(0, 60), ")"));
  }
  return Statement(stmt, db_, std::string(sql));
}

absl::Status Database::InTransaction(const std::function<absl::Status()>& body) {
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  absl::Status status = body();
  if (status.ok()) status = Exec("COMMIT");
  if (!status.ok()) {
    // The original error is what the caller needs; a failed rollback leaves SQLite to undo on close.
    (void)Exec("ROLLBACK");
  }
  return status;
}

absl::StatusOr<int> Database::SchemaVersion() {
  ASSIGN_OR_RETURN(Statement stmt, Prepare("PRAGMA user_version"));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? static_cast<int>(stmt.ColumnInt(0)) : 0;
}

absl::Status Database::Migrate(std::span<const Migration> migrations) {
  ASSIGN_OR_RETURN(int current, SchemaVersion());
  const int latest = migrations.empty() ? 0 : migrations.back().version;
  if (current > latest) {
    return absl::FailedPreconditionError(
        absl::StrCat(path_.string(), " has schema version ", current, " but this binary knows only up to ",
                     latest, ": it was written by a newer FedAttn"));
  }
  for (size_t i = 0; i < migrations.size(); ++i) {
    const Migration& migration = migrations[i];
    if (migration.version != static_cast<int>(i) + 1) {
      return absl::InternalError(absl::StrCat("migration list out of order at version ", migration.version));
    }
    if (migration.version <= current) continue;
    RETURN_IF_ERROR(InTransaction([&]() -> absl::Status {
      RETURN_IF_ERROR(Exec(migration.sql));
      return Exec(absl::StrCat("PRAGMA user_version=", migration.version));
    }));
  }
  return absl::OkStatus();
}

}  // namespace fedattn::storage
