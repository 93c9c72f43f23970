#include "fedattn/agent/agent_options.h"

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/temp_dir.h"

namespace fedattn::agent {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<AgentOptions> LoadText(const testing::TempDir& dir, const std::string& text) {
  std::ofstream(dir / "site.yaml") << text;
  return LoadAgentOptions(dir / "site.yaml");
}

const char kGood[] =
    "site:\n  name: hospital-a\ncoordinator:\n  address: 127.0.0.1:50051\n"
    "tls:\n  ca: ca.crt\n  cert: a.crt\n  key: a.key\n";

TEST(AgentOptionsTest, LoadsAKitConfig) {
  testing::TempDir dir;
  auto options = LoadText(dir, std::string(kGood) + "connection:\n  max_backoff_seconds: 2\n");
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->site_name, "hospital-a");
  EXPECT_EQ(options->coordinator.name, "coordinator");
  EXPECT_EQ(options->state_dir, dir / "state");
  EXPECT_EQ(options->tls.key, dir / "a.key");
  EXPECT_EQ(options->max_backoff_ms, 2000);
}

TEST(AgentOptionsTest, RefusesBadValues) {
  testing::TempDir dir;
  EXPECT_THAT(std::string(LoadText(dir, "site:\n  name: a\ncoordinator:\n  address: nohost\n"
                                        "tls:\n  ca: c\n  cert: c\n  key: k\n")
                              .status()
                              .message()),
              HasSubstr("site.yaml:4: coordinator.address: needs host:port"));
  EXPECT_THAT(std::string(LoadText(dir, std::string(kGood) + "connection:\n  initial_backoff_seconds: 10\n"
                                                             "  max_backoff_seconds: 1\n")
                              .status()
                              .message()),
              HasSubstr("initial_backoff_seconds must not exceed max_backoff_seconds"));
  EXPECT_THAT(std::string(LoadText(dir, std::string(kGood) + "connection:\n  pull_wait_seconds: soon\n")
                              .status()
                              .message()),
              HasSubstr("site.yaml:10: connection.pull_wait_seconds: expected a number, got 'soon'"));
  EXPECT_THAT(std::string(LoadText(dir, std::string(kGood) + "sight: x\n").status().message()),
              HasSubstr("site.yaml:9: sight: unknown key"));
}

}  // namespace
}  // namespace fedattn::agent
