#include "commands.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedattn::cli {
namespace {

using ::testing::HasSubstr;

v1::GetStatusResponse Example() {
  v1::GetStatusResponse status;
  status.set_coordinator_name("coordinator");
  status.set_version("0.1.0");
  status.set_started_unix_ms(1'000'000);
  status.set_now_unix_ms(1'000'000 + 3'723'000);
  status.set_sites_registered(2);
  status.set_sites_online(1);
  v1::SiteInfo* a = status.add_sites();
  a->set_name("hospital-a");
  a->set_online(true);
  a->set_last_seen_unix_ms(status.now_unix_ms() - 2000);
  a->set_world_size(4);
  a->set_state("idle");
  a->set_fingerprint(std::string(64, 'a'));
  v1::SiteInfo* b = status.add_sites();
  b->set_name("a-much-longer-site-name");
  b->set_online(false);
  b->set_last_seen_unix_ms(status.now_unix_ms() - 3 * 86400 * 1000);
  return status;
}

TEST(StatusCommandTest, TableShowsEverySite) {
  const std::string table = FormatStatusTable(Example());
  EXPECT_THAT(table, HasSubstr("coordinator 'coordinator' (FedAttn 0.1.0), up 1h02m03s: 2 site(s) registered, 1 online"));
  EXPECT_THAT(table, ::testing::ContainsRegex("hospital-a +yes +2s ago +4 +idle"));
  EXPECT_THAT(table, ::testing::ContainsRegex("a-much-longer-site-name +no +3d ago"));
  EXPECT_THAT(table, HasSubstr(std::string(16, 'a')));
}

TEST(StatusCommandTest, EmptyFederationSaysSo) {
  v1::GetStatusResponse status;
  EXPECT_THAT(FormatStatusTable(status), HasSubstr("no site has registered yet"));
}

TEST(StatusCommandTest, JsonHasEveryField) {
  const nlohmann::json json = StatusToJson(Example());
  EXPECT_EQ(json["sites_online"], 1);
  EXPECT_EQ(json["sites"][0]["name"], "hospital-a");
  EXPECT_EQ(json["sites"][0]["world_size"], 4);
  EXPECT_EQ(json["sites"][1]["online"], false);
}

}  // namespace
}  // namespace fedattn::cli
