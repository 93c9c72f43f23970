// A SQLite database with RAII handles, absl::Status errors, WAL journaling and versioned schema
// migrations. The coordinator and the agent keep their durable state in one of these.
//
// Thread safety: a Database and its Statements are NOT thread-safe; the owner serializes access.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct sqlite3;
struct sqlite3_stmt;

namespace fedattn::storage {

// One schema step. Versions start at 1 and increase by one; each runs in its own transaction
// and the database's `PRAGMA user_version` records the last one applied.
struct Migration {
  int version;
  absl::string_view description;
  absl::string_view sql;
};

class Statement {
 public:
  Statement(Statement&&) noexcept;
  Statement& operator=(Statement&&) = delete;
  ~Statement();

  // Binds parameter `index` (1-based). Errors surface at Step().
  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, double value);
  Statement& Bind(int index, absl::string_view text);
  Statement& BindBlob(int index, std::span<const uint8_t> blob);
  Statement& BindNull(int index);

  // Advances: true when a row is available, false when done.
  [[nodiscard]] absl::StatusOr<bool> Step();
  // Steps until done (for INSERT/UPDATE/DELETE).
  [[nodiscard]] absl::Status Run();
  // Clears bindings and rewinds, so the statement can run again.
  void Reset();

  int64_t ColumnInt(int column) const;
  double ColumnDouble(int column) const;
  std::string ColumnText(int column) const;
  bool ColumnIsNull(int column) const;

 private:
  friend class Database;
  Statement(sqlite3_stmt* stmt, sqlite3* db, std::string sql);
  sqlite3_stmt* stmt_;
  sqlite3* db_;
  std::string sql_;
};

class Database {
 public:
  struct Options {
    bool wal = true;              // journal_mode=WAL (readers never block the writer)
    bool synchronous_full = true;  // fsync every commit: a committed row survives power loss
    int busy_timeout_ms = 5000;   // wait this long for a lock held by another connection
  };

  // Opens (creating if needed) the database at `path`, with the file mode 0600.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Database>> Open(const std::filesystem::path& path,
                                                                      const Options& options);
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Database>> Open(const std::filesystem::path& path) {
    return Open(path, Options());
  }
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs SQL that returns no rows (may hold several statements).
  [[nodiscard]] absl::Status Exec(absl::string_view sql);
  [[nodiscard]] absl::StatusOr<Statement> Prepare(absl::string_view sql);

  // Runs `body` inside BEGIN IMMEDIATE … COMMIT; rolls back if it returns an error.
  [[nodiscard]] absl::Status InTransaction(const std::function<absl::Status()>& body);

  // Applies the migrations newer than the stored version, in order. FAILED_PRECONDITION if the
  // database is newer than this binary knows (a downgrade), naming both versions.
  [[nodiscard]] absl::Status Migrate(std::span<const Migration> migrations);
  [[nodiscard]] absl::StatusOr<int> SchemaVersion();

  const std::filesystem::path& path() const { return path_; }

 private:
  Database(sqlite3* db, std::filesystem::path path) : db_(db), path_(std::move(path)) {}
  absl::Status Error(absl::string_view what) const;

  sqlite3* db_;
  std::filesystem::path path_;
};

}  // namespace fedattn::storage
