#include "fedattn/storage/database.h"

#include <sys/stat.h>

#include "fedattn/common/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/temp_dir.h"

namespace fedattn::storage {
namespace {

using ::testing::HasSubstr;

constexpr Migration kV1[] = {{1, "t", "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER);"}};
constexpr Migration kV2[] = {{1, "t", "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER);"},
                             {2, "u", "ALTER TABLE t ADD COLUMN note TEXT NOT NULL DEFAULT '';"}};

TEST(DatabaseTest, MigratesAndRecordsVersion) {
  testing::TempDir dir;
  auto db = Database::Open(dir / "s.db");
  ASSERT_TRUE(db.ok()) << db.status();
  ASSERT_TRUE((*db)->Migrate(kV1).ok());
  EXPECT_EQ(*(*db)->SchemaVersion(), 1);
  ASSERT_TRUE((*db)->Migrate(kV2).ok());
  EXPECT_EQ(*(*db)->SchemaVersion(), 2);
  ASSERT_TRUE((*db)->Exec("INSERT INTO t (k, v, note) VALUES ('a', 1, 'n')").ok());
  ASSERT_TRUE((*db)->Migrate(kV2).ok());  // idempotent
}

TEST(DatabaseTest, RefusesADatabaseFromANewerBinary) {
  testing::TempDir dir;
  {
    auto db = Database::Open(dir / "s.db");
    ASSERT_TRUE((*db)->Migrate(kV2).ok());
  }
  auto db = Database::Open(dir / "s.db");
  const absl::Status status = (*db)->Migrate(kV1);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr("schema version 2"));
}

TEST(DatabaseTest, DataSurvivesReopenAndUsesWalAndMode0600) {
  testing::TempDir dir;
  {
    auto db = Database::Open(dir / "s.db");
    ASSERT_TRUE((*db)->Migrate(kV1).ok());
    auto insert = (*db)->Prepare("INSERT INTO t (k, v) VALUES (?1, ?2)");
    ASSERT_TRUE(insert.ok());
    insert->Bind(1, "key").Bind(2, int64_t{42});
    ASSERT_TRUE(insert->Run().ok());
  }
  auto db = Database::Open(dir / "s.db");
  auto select = (*db)->Prepare("SELECT v FROM t WHERE k = 'key'");
  ASSERT_TRUE(*select->Step());
  EXPECT_EQ(select->ColumnInt(0), 42);
  auto mode = (*db)->Prepare("PRAGMA journal_mode");
  ASSERT_TRUE(*mode->Step());
  EXPECT_EQ(mode->ColumnText(0), "wal");
  struct stat st {};
  ASSERT_EQ(::stat((dir / "s.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(DatabaseTest, FailedTransactionRollsBack) {
  testing::TempDir dir;
  auto db = Database::Open(dir / "s.db");
  ASSERT_TRUE((*db)->Migrate(kV1).ok());
  const absl::Status status = (*db)->InTransaction([&]() -> absl::Status {
    RETURN_IF_ERROR((*db)->Exec("INSERT INTO t (k, v) VALUES ('a', 1)"));
    return absl::AbortedError("changed my mind");
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted);
  auto count = (*db)->Prepare("SELECT COUNT(*) FROM t");
  ASSERT_TRUE(*count->Step());
  EXPECT_EQ(count->ColumnInt(0), 0);
}

TEST(DatabaseTest, ConstraintViolationIsAlreadyExists) {
  testing::TempDir dir;
  auto db = Database::Open(dir / "s.db");
  ASSERT_TRUE((*db)->Migrate(kV1).ok());
  ASSERT_TRUE((*db)->Exec("INSERT INTO t (k, v) VALUES ('a', 1)").ok());
  EXPECT_EQ((*db)->Exec("INSERT INTO t (k, v) VALUES ('a', 2)").code(), absl::StatusCode::kAlreadyExists);
}

TEST(DatabaseTest, BadSqlNamesTheStatement) {
  testing::TempDir dir;
  auto db = Database::Open(dir / "s.db");
  auto statement = (*db)->Prepare("SELEKT nothing");
  ASSERT_FALSE(statement.ok());
  EXPECT_THAT(std::string(statement.status().message()), HasSubstr("SELEKT"));
}

TEST(DatabaseTest, NotADatabaseIsDataLoss) {
  testing::TempDir dir;
  {
    std::FILE* f = std::fopen((dir / "junk.db").c_str(), "w");
    std::fputs("this is not an SQLite database, just text that is long enough to have a header....", f);
    std::fclose(f);
  }
  auto db = Database::Open(dir / "junk.db");
  if (db.ok()) {
    EXPECT_EQ((*db)->Migrate(kV1).code(), absl::StatusCode::kDataLoss);
  } else {
    EXPECT_EQ(db.status().code(), absl::StatusCode::kDataLoss);
  }
}

}  // namespace
}  // namespace fedattn::storage
