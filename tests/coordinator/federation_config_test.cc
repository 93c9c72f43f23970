#include "fedattn/coordinator/federation_config.h"

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/temp_dir.h"

namespace fedattn::coordinator {
namespace {

using ::testing::HasSubstr;

TEST(FederationConfigTest, LoadsTheShippedExample) {
  auto config = LoadFederationConfig(std::filesystem::path(FEDATTN_SOURCE_DIR) / "configs" / "federation.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->name, "demo-consortium");
  EXPECT_EQ(config->sites, (std::vector<std::string>{"hospital-a", "hospital-b", "hospital-c"}));
  EXPECT_EQ(config->admins, std::vector<std::string>{"operator"});
  EXPECT_EQ(config->coordinator.address, "127.0.0.1:50051");
}

TEST(FederationConfigTest, LoadsTheSchoolsFederation) {
  auto config =
      LoadFederationConfig(std::filesystem::path(FEDATTN_SOURCE_DIR) / "configs" / "federations" / "schools.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->name, "london-schools");
  EXPECT_EQ(config->sites, (std::vector<std::string>{"trust-a", "trust-b", "trust-c", "trust-d", "trust-e"}));
  EXPECT_EQ(config->coordinator.address, "127.0.0.1:50052");
}

absl::Status LoadText(const std::string& text) {
  testing::TempDir dir;
  std::ofstream(dir / "federation.yaml") << text;
  return LoadFederationConfig(dir / "federation.yaml").status();
}

TEST(FederationConfigTest, RefusesBadFederations) {
  const std::string head = "federation: f\ncoordinator:\n  name: c\n";
  EXPECT_THAT(std::string(LoadText(head + "sites:\n  - name: a\n  - name: a\nadmins:\n  - name: o\n").message()),
              HasSubstr("site name 'a' is used by another party"));
  EXPECT_THAT(std::string(LoadText(head + "sites:\n  - name: c\nadmins:\n  - name: o\n").message()),
              HasSubstr("site name 'c' is used by another party"));
  EXPECT_THAT(std::string(LoadText(head + "sites:\n  - name: a b\nadmins:\n  - name: o\n").message()),
              HasSubstr("contains ' '"));
  EXPECT_THAT(std::string(LoadText(head + "admins:\n  - name: o\n").message()), HasSubstr("sites: required list"));
  EXPECT_THAT(std::string(LoadText(head + "sites:\n  - name: a\nadmins:\n  - name: o\nvalidity_days: 0\n").message()),
              HasSubstr("federation.yaml:8: validity_days: must be between 1 and 3650"));
  EXPECT_THAT(std::string(LoadText(head + "sites:\n  - name: a\n    role: x\nadmins:\n  - name: o\n").message()),
              HasSubstr("federation.yaml:6: sites[0].role: unknown key"));
}

}  // namespace
}  // namespace fedattn::coordinator
