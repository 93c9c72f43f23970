#include "fedattn/coordinator/coordinator_options.h"

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/temp_dir.h"

namespace fedattn::coordinator {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<CoordinatorOptions> LoadText(const testing::TempDir& dir, const std::string& text) {
  std::ofstream(dir / "coordinator.yaml") << text;
  return LoadCoordinatorOptions(dir / "coordinator.yaml");
}

const char kTls[] = "tls:\n  ca: ca.crt\n  cert: c.crt\n  key: c.key\n";

TEST(CoordinatorOptionsTest, ResolvesPathsAgainstTheFile) {
  testing::TempDir dir;
  auto options = LoadText(dir, std::string("coordinator:\n  name: c\n  heartbeat_interval_seconds: 2\n") + kTls);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->state_dir, dir / "state");
  EXPECT_EQ(options->tls.cert, dir / "c.crt");
  EXPECT_EQ(options->heartbeat_interval_ms, 2000);
}

// Malformed YAML, wrong types, unknown keys and unreadable files (docs/bad-input.md).
TEST(CoordinatorOptionsTest, BadFilesNameFileLineAndKey) {
  testing::TempDir dir;
  const struct {
    std::string text, expected;
  } cases[] = {
      {"coordinator:\n  name: [c\n", "coordinator.yaml:3: not valid YAML"},
      {std::string("coordinator:\n  name: c\n  heartbeat_interval_seconds: often\n") + kTls,
       "coordinator.yaml:3: coordinator.heartbeat_interval_seconds: expected a number"},
      {std::string("coordinator:\n  name: c\n  colour: red\n") + kTls, "coordinator.yaml:3: coordinator.colour: unknown key"},
      {std::string("coordinator:\n  name: c\n") + kTls + "  crl: crl\n", "coordinator.yaml:7: tls.crl: unknown key"},
  };
  for (const auto& c : cases) {
    const absl::Status status = LoadText(dir, c.text).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.expected)) << c.text;
  }
  EXPECT_EQ(LoadCoordinatorOptions(dir / "absent.yaml").status().code(), absl::StatusCode::kNotFound);
  std::filesystem::create_directory(dir / "dir.yaml");
  EXPECT_THAT(std::string(LoadCoordinatorOptions(dir / "dir.yaml").status().message()), HasSubstr("is a directory"));
}

TEST(CoordinatorOptionsTest, RefusesBadValues) {
  testing::TempDir dir;
  EXPECT_THAT(std::string(LoadText(dir, std::string("coordinator:\n  name: c\n  listen: nowhere\n") + kTls)
                              .status()
                              .message()),
              HasSubstr("listen address 'nowhere' needs host:port"));
  EXPECT_THAT(std::string(LoadText(dir, std::string("coordinator:\n  name: c\n  heartbeat_interval_seconds: 10\n"
                                                    "  online_window_seconds: 5\n") +
                                            kTls)
                              .status()
                              .message()),
              HasSubstr("online_window_seconds must be at least heartbeat_interval_seconds"));
  EXPECT_THAT(std::string(LoadText(dir, "coordinator:\n  name: c\ntls:\n  ca: ca.crt\n").status().message()),
              HasSubstr("coordinator.yaml:4: tls.cert: required key is missing"));
}

}  // namespace
}  // namespace fedattn::coordinator
