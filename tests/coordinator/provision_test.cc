#include "fedattn/coordinator/provision.h"

#include <sys/stat.h>

#include "absl/time/clock.h"
#include "fedattn/common/files.h"
#include "fedattn/rpc/tls.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/temp_dir.h"

namespace fedattn::coordinator {
namespace {

using ::testing::HasSubstr;

FederationConfig Config() {
  FederationConfig config;
  config.name = "fed";
  config.coordinator.address = "10.1.2.3:50051";
  config.coordinator.hosts = {"fl.example.org"};
  config.sites = {"hospital-a", "school-b"};
  config.admins = {"alice"};
  return config;
}

mode_t ModeOf(const std::filesystem::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

TEST(ProvisionTest, WritesACaAndOneKitPerParty) {
  testing::TempDir dir;
  ASSERT_TRUE(Provision(Config(), dir.path(), absl::Now()).ok());
  EXPECT_EQ(ModeOf(dir / "ca" / "ca.key"), 0600u);
  for (const auto& [party, yaml] : std::vector<std::pair<std::string, std::string>>{
           {"coordinator", "coordinator.yaml"}, {"hospital-a", "site.yaml"}, {"school-b", "site.yaml"},
           {"alice", "admin.yaml"}}) {
    const std::filesystem::path kit = dir / "kits" / party;
    EXPECT_EQ(ModeOf(kit), 0700u);
    EXPECT_EQ(ModeOf(kit / (party + ".key")), 0600u);
    EXPECT_EQ(ModeOf(kit / "start.sh"), 0755u);
    EXPECT_TRUE(std::filesystem::exists(kit / yaml)) << kit / yaml;
    EXPECT_FALSE(std::filesystem::exists(kit / "ca.key")) << "the CA key must never be in a kit";
    auto identity = rpc::LoadTlsIdentity({kit / "ca.crt", kit / (party + ".crt"), kit / (party + ".key"), {}});
    ASSERT_TRUE(identity.ok()) << identity.status();
    EXPECT_EQ(identity->info.name, party);
    EXPECT_EQ(identity->info.federation, "fed");
  }
  auto coordinator_pem = ReadFile(dir / "kits" / "coordinator" / "coordinator.crt");
  auto coordinator = crypto::InspectCertificatePem(*coordinator_pem);
  EXPECT_EQ(coordinator->role, crypto::PartyRole::kCoordinator);
  EXPECT_THAT(*ReadFile(dir / "kits" / "hospital-a" / "site.yaml"), HasSubstr("address: 10.1.2.3:50051"));
}

TEST(ProvisionTest, RefusesToReplaceAnExistingCa) {
  testing::TempDir dir;
  ASSERT_TRUE(Provision(Config(), dir.path(), absl::Now()).ok());
  const std::string ca_before = *ReadFile(dir / "ca" / "ca.crt");
  const absl::Status again = Provision(Config(), dir.path(), absl::Now());
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(again.message()), HasSubstr("would replace the consortium CA"));
  EXPECT_EQ(*ReadFile(dir / "ca" / "ca.crt"), ca_before);
}

TEST(ProvisionTest, IssuesMoreCertificatesWithTheSameCa) {
  testing::TempDir dir;
  ASSERT_TRUE(Provision(Config(), dir.path(), absl::Now()).ok());
  crypto::CertificateRequest request{"late-site", crypto::PartyRole::kSite, "fed", {}, {}, absl::Now(),
                                     absl::Now() + absl::Hours(1)};
  ASSERT_TRUE(IssuePartyCertificate(dir.path(), request, dir / "late").ok());
  auto identity = rpc::LoadTlsIdentity({dir / "ca" / "ca.crt", dir / "late" / "late-site.crt",
                                        dir / "late" / "late-site.key", {}});
  EXPECT_TRUE(identity.ok()) << identity.status();
  EXPECT_EQ(ModeOf(dir / "late" / "late-site.key"), 0600u);
}

TEST(ProvisionTest, TlsIdentityRefusesMismatchedOrForeignFiles) {
  testing::TempDir dir;
  ASSERT_TRUE(Provision(Config(), dir.path(), absl::Now()).ok());
  const std::filesystem::path a = dir / "kits" / "hospital-a";
  const std::filesystem::path b = dir / "kits" / "school-b";
  auto mismatched = rpc::LoadTlsIdentity({a / "ca.crt", a / "hospital-a.crt", b / "school-b.key", {}});
  EXPECT_THAT(std::string(mismatched.status().message()), HasSubstr("does not match the certificate"));
  testing::TempDir other;
  ASSERT_TRUE(Provision(Config(), other.path(), absl::Now()).ok());
  auto foreign = rpc::LoadTlsIdentity({a / "ca.crt", other / "kits" / "hospital-a" / "hospital-a.crt",
                                       other / "kits" / "hospital-a" / "hospital-a.key", {}});
  EXPECT_THAT(std::string(foreign.status().message()), HasSubstr("cannot be verified against the CA"));
  auto missing = rpc::LoadTlsIdentity({a / "ca.crt", a / "nope.crt", a / "hospital-a.key", {}});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace fedattn::coordinator
