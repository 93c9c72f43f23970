// A coordinator and three agents as real processes on 127.0.0.1 over mutual TLS: they register,
// heartbeat, show up online in `fedattn status`, and survive a coordinator killed with SIGKILL.
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "util/test_federation.h"

namespace fedattn::testing {
namespace {

using ::testing::HasSubstr;

// Polls `fedattn status --json` until `online` sites are online (or 30 s pass).
nlohmann::json WaitForOnline(const TestFederation& federation, int online) {
  nlohmann::json status;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    const CommandResult result = federation.Status();
    if (result.exit_code == 0) {
      status = nlohmann::json::parse(result.output.substr(result.output.find('{')));
      if (status["sites_online"] == online) return status;
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  ADD_FAILURE() << "timed out waiting for " << online << " sites online; last status: " << status.dump();
  return status;
}

TEST(FederationTest, AgentsRegisterHeartbeatAndSurviveACoordinatorKill) {
  TestFederation federation({"hospital-a", "hospital-b", "hospital-c"});
  auto coordinator = federation.StartCoordinator();
  std::vector<std::unique_ptr<Subprocess>> agents;
  for (const std::string site : {"hospital-a", "hospital-b", "hospital-c"}) agents.push_back(federation.StartAgent(site));

  nlohmann::json status = WaitForOnline(federation, 3);
  ASSERT_EQ(status["sites_registered"], 3);
  for (const auto& site : status["sites"]) {
    EXPECT_TRUE(site["online"]);
    EXPECT_EQ(site["fingerprint"].get<std::string>().size(), 64u);
  }
  const int64_t first_seen_a = status["sites"][0]["first_seen_unix_ms"];
  EXPECT_TRUE(agents[0]->WaitForLog("registered with coordinator 'coordinator'", absl::Seconds(5)));

  // Heartbeats move last_seen forward.
  absl::SleepFor(absl::Seconds(1));
  const nlohmann::json later = WaitForOnline(federation, 3);
  EXPECT_GT(later["sites"][0]["last_seen_unix_ms"].get<int64_t>(), status["sites"][0]["last_seen_unix_ms"].get<int64_t>());

  // kill -9 and restart on the same state: the registered sites are kept and the agents come back.
  coordinator->Signal(SIGKILL);
  ASSERT_TRUE(coordinator->Wait(absl::Seconds(10)).has_value());
  EXPECT_TRUE(agents[0]->WaitForLog("cannot reach coordinator", absl::Seconds(10)));
  coordinator = federation.StartCoordinator("coordinator-restarted.log");
  const CommandResult right_after = federation.Status();
  ASSERT_EQ(right_after.exit_code, 0) << right_after.output;
  const nlohmann::json kept = nlohmann::json::parse(right_after.output.substr(right_after.output.find('{')));
  EXPECT_EQ(kept["sites_registered"], 3);
  EXPECT_EQ(kept["sites"][0]["first_seen_unix_ms"], first_seen_a);

  // Every agent reconnects on its own (the sites still look online for a moment from before the
  // kill, so wait for each re-registration rather than for the online count).
  for (const std::string site : {"hospital-a", "hospital-b", "hospital-c"}) {
    EXPECT_TRUE(coordinator->WaitForLog("site '" + site + "' registered again", absl::Seconds(30))) << site;
  }
  const nlohmann::json back = WaitForOnline(federation, 3);
  EXPECT_EQ(back["sites_registered"], 3);

  // A clean stop on SIGTERM.
  agents[1]->Signal(SIGTERM);
  EXPECT_EQ(agents[1]->Wait(absl::Seconds(10)), 0);
  coordinator->Signal(SIGTERM);
  EXPECT_EQ(coordinator->Wait(absl::Seconds(10)), 0);
}

TEST(FederationTest, StatusCommandPrintsATable) {
  TestFederation federation({"hospital-a"});
  auto coordinator = federation.StartCoordinator();
  auto agent = federation.StartAgent("hospital-a");
  WaitForOnline(federation, 1);
  const CommandResult table = RunCommand({CliBinary(), "status", "--config",
                                          (federation.Kit("operator") / "admin.yaml").string(), "--coordinator",
                                          federation.address()});
  ASSERT_EQ(table.exit_code, 0) << table.output;
  EXPECT_THAT(table.output, HasSubstr("1 site(s) registered, 1 online"));
  EXPECT_THAT(table.output, ::testing::ContainsRegex("hospital-a +yes"));
}

TEST(FederationTest, AgentCheckPassesOnAGoodKit) {
  TestFederation federation({"hospital-a"});
  auto coordinator = federation.StartCoordinator();
  const std::filesystem::path kit = federation.Kit("hospital-a");
  const std::filesystem::path yaml =
      federation.WriteSiteYaml(kit, "hospital-a", "hospital-a.crt", "hospital-a.key", kit / "ca.crt");
  const CommandResult check = RunCommand({AgentBinary(), "check", "--config", yaml.string()});
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_THAT(check.output, HasSubstr("connection:  ok"));
  EXPECT_THAT(check.output, HasSubstr("register:    ok"));
}

}  // namespace
}  // namespace fedattn::testing
