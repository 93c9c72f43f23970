#include "fedattn/coordinator/provision.h"

#include <sys/stat.h>

#include "absl/time/clock.h"
#include "fedattn/common/files.h"
#include "fedattn/crypto/crl.h"
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

crypto::X509Ptr LoadCert(const std::filesystem::path& path) { return *crypto::CertificateFromPem(*ReadFile(path)); }

TEST(ProvisionTest, EveryKitCarriesAnEmptyRevocationListItsTlsChecks) {
  testing::TempDir dir;
  ASSERT_TRUE(Provision(Config(), dir.path(), absl::Now()).ok());
  crypto::X509Ptr ca = LoadCert(dir / "ca" / "ca.crt");
  for (const std::string party : {"coordinator", "hospital-a", "alice"}) {
    const std::filesystem::path kit = dir / "kits" / party;
    auto crl = ReadFile(kit / "crl" / crypto::CrlFileName(ca.get(), 0));
    ASSERT_TRUE(crl.ok()) << crl.status();
    auto contents = crypto::ReadCrlPem(*crl, ca.get());
    ASSERT_TRUE(contents.ok()) << contents.status();
    EXPECT_TRUE(contents->revoked.empty());
    EXPECT_GT(contents->next_update, absl::Now() + absl::Hours(24 * 365));  // lives as long as the CA
    crypto::X509Ptr cert = LoadCert(kit / (party + ".crt"));
    EXPECT_TRUE(crypto::VerifyCertificateWithCrl(cert.get(), ca.get(), *crl, absl::Now()).ok());
  }
  EXPECT_THAT(*ReadFile(dir / "kits" / "hospital-a" / "site.yaml"), HasSubstr("crl_dir: crl"));
  EXPECT_THAT(*ReadFile(dir / "kits" / "coordinator" / "coordinator.yaml"), HasSubstr("crl_dir: crl"));
}

TEST(ProvisionTest, RevokingASiteAddsANewerCrlToEveryKit) {
  testing::TempDir dir;
  const absl::Time now = absl::Now();
  ASSERT_TRUE(Provision(Config(), dir.path(), now).ok());
  crypto::X509Ptr ca = LoadCert(dir / "ca" / "ca.crt");
  crypto::X509Ptr hospital = LoadCert(dir / "kits" / "hospital-a" / "hospital-a.crt");
  crypto::X509Ptr school = LoadCert(dir / "kits" / "school-b" / "school-b.crt");
  ASSERT_TRUE(RevokeParty(dir.path(), "hospital-a", now).ok());
  ASSERT_TRUE(RevokeParty(dir.path(), "school-b", now).ok());  // same second: the CRL still moves on
  for (const std::string party : {"coordinator", "hospital-a", "school-b", "alice"}) {
    const std::filesystem::path crl_dir = dir / "kits" / party / "crl";
    EXPECT_TRUE(std::filesystem::exists(crl_dir / crypto::CrlFileName(ca.get(), 0))) << party;
    EXPECT_TRUE(std::filesystem::exists(crl_dir / crypto::CrlFileName(ca.get(), 1))) << party;
    EXPECT_TRUE(std::filesystem::exists(crl_dir / crypto::CrlFileName(ca.get(), 2))) << party;
  }
  const std::string latest = *ReadFile(dir / "kits" / "coordinator" / "crl" / crypto::CrlFileName(ca.get(), 2));
  EXPECT_EQ(latest, *ReadFile(dir / "ca" / "ca.crl"));
  auto contents = crypto::ReadCrlPem(latest, ca.get());
  ASSERT_TRUE(contents.ok()) << contents.status();
  EXPECT_EQ(contents->number, 2u);
  ASSERT_EQ(contents->revoked.size(), 2u);
  const absl::Time later = now + absl::Seconds(5);
  EXPECT_THAT(std::string(crypto::VerifyCertificateWithCrl(hospital.get(), ca.get(), latest, later).message()),
              HasSubstr("certificate revoked"));
  EXPECT_THAT(std::string(crypto::VerifyCertificateWithCrl(school.get(), ca.get(), latest, later).message()),
              HasSubstr("certificate revoked"));
  crypto::X509Ptr admin = LoadCert(dir / "kits" / "alice" / "alice.crt");
  EXPECT_TRUE(crypto::VerifyCertificateWithCrl(admin.get(), ca.get(), latest, later).ok());
}

TEST(ProvisionTest, RevokeNamesWhatIsWrong) {
  testing::TempDir dir;
  ASSERT_TRUE(Provision(Config(), dir.path(), absl::Now()).ok());
  const absl::Status unknown = RevokeParty(dir.path(), "hospital-z", absl::Now());
  EXPECT_EQ(unknown.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(unknown.message()), HasSubstr("no kit for party 'hospital-z'"));
  ASSERT_TRUE(RevokeParty(dir.path(), "hospital-a", absl::Now()).ok());
  const std::string crl = *ReadFile(dir / "ca" / "ca.crl");
  const absl::Status again = RevokeParty(dir.path(), "hospital-a", absl::Now());
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(again.message()), HasSubstr("'hospital-a'"));
  EXPECT_EQ(*ReadFile(dir / "ca" / "ca.crl"), crl);  // nothing issued
  EXPECT_EQ(RevokeParty(dir.path(), "../ca", absl::Now()).code(), absl::StatusCode::kInvalidArgument);
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
