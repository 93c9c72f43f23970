#include "commands.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedattn::cli {
namespace {

TEST(ProvisionCommandTest, JsonListsTheCaAndEveryKitWithItsRole) {
  coordinator::FederationConfig config;
  config.name = "demo";
  config.coordinator.name = "coordinator";
  config.sites = {"hospital-a", "hospital-b"};
  config.admins = {"operator"};
  const nlohmann::json json = ProvisionToJson(config, "/tmp/fed");
  EXPECT_EQ(json["federation"], "demo");
  EXPECT_EQ(json["ca"], "/tmp/fed/ca");
  ASSERT_EQ(json["kits"].size(), 4u);
  EXPECT_EQ(json["kits"][0], nlohmann::json({{"party", "coordinator"}, {"role", "coordinator"}, {"path", "/tmp/fed/kits/coordinator"}}));
  EXPECT_EQ(json["kits"][1]["party"], "hospital-a");
  EXPECT_EQ(json["kits"][2]["role"], "site");
  EXPECT_EQ(json["kits"][3], nlohmann::json({{"party", "operator"}, {"role", "admin"}, {"path", "/tmp/fed/kits/operator"}}));
}

}  // namespace
}  // namespace fedattn::cli
