#include "fedattn/common/files.h"

#include <sys/stat.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "util/temp_dir.h"

namespace fedattn {
namespace {

mode_t ModeOf(const std::filesystem::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return st.st_mode & 0777;
}

TEST(FilesTest, WriteThenReadRoundTrips) {
  testing::TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir / "a.txt", "hello\n").ok());
  auto text = ReadFile(dir / "a.txt");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "hello\n");
  EXPECT_FALSE(std::filesystem::exists(dir / "a.txt.tmp"));
}

TEST(FilesTest, PrivateFilesGetExactMode) {
  testing::TempDir dir;
  const mode_t old_umask = ::umask(0);  // a permissive umask must not widen a key file
  ASSERT_TRUE(WriteFileAtomic(dir / "key", "secret", 0600).ok());
  ::umask(old_umask);
  EXPECT_EQ(ModeOf(dir / "key"), 0600u);
}

TEST(FilesTest, MissingFileIsNotFoundAndNamesThePath) {
  testing::TempDir dir;
  auto text = ReadFile(dir / "nope.yaml");
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(text.status().message().find("nope.yaml"), absl::string_view::npos);
}

TEST(FilesTest, DirectoryIsNotReadAsAnEmptyFile) {
  testing::TempDir dir;
  std::filesystem::create_directory(dir / "data.csv");
  auto text = ReadFile(dir / "data.csv");
  EXPECT_EQ(text.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(text.status().message().find("data.csv: it is a directory"), absl::string_view::npos)
      << text.status();
}

TEST(FilesTest, UnreadableFileIsPermissionDeniedAndNamesThePath) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads any file";
  testing::TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir / "site.yaml", "site: {}\n", 0000).ok());
  auto text = ReadFile(dir / "site.yaml");
  EXPECT_EQ(text.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(text.status().message().find("site.yaml"), absl::string_view::npos);
}

TEST(FilesTest, EnsureDirectoryCreatesParentsAndRefusesFiles) {
  testing::TempDir dir;
  ASSERT_TRUE(EnsureDirectory(dir / "a" / "b" / "c", 0700).ok());
  EXPECT_TRUE(std::filesystem::is_directory(dir / "a" / "b" / "c"));
  EXPECT_EQ(ModeOf(dir / "a" / "b" / "c"), 0700u);
  ASSERT_TRUE(WriteFileAtomic(dir / "file", "x").ok());
  EXPECT_EQ(EnsureDirectory(dir / "file").code(), absl::StatusCode::kFailedPrecondition);
}

TEST(FilesTest, WriteIntoMissingDirectoryFails) {
  testing::TempDir dir;
  const absl::Status status = WriteFileAtomic(dir / "missing" / "x", "data");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace fedattn
