// Mutual TLS and identity, end to end: a real coordinator process on 127.0.0.1 refuses every
// caller that is not who it must be (DESIGN.md section 5).
#include <grpcpp/client_context.h>

#include <fstream>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fedattn/common/files.h"
#include "fedattn/rpc/connection_probe.h"
#include "fedattn/v1/fedattn.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "util/test_federation.h"

namespace fedattn::testing {
namespace {

using ::testing::HasSubstr;

class IdentityTest : public ::testing::Test {
 protected:
  void SetUp() override { coordinator_ = federation_.StartCoordinator(); }

  grpc::Status Register(const rpc::TlsIdentity& identity, const std::string& site_name) {
    auto stub = v1::SiteService::NewStub(rpc::MakeChannel(identity, federation_.address(), "coordinator"));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::RegisterRequest request;
    request.set_site_name(site_name);
    v1::RegisterResponse response;
    return stub->Register(&context, request, &response);
  }

  grpc::Status GetStatus(const rpc::TlsIdentity& identity) {
    auto stub = v1::AdminService::NewStub(rpc::MakeChannel(identity, federation_.address(), "coordinator"));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::GetStatusResponse response;
    return stub->GetStatus(&context, v1::GetStatusRequest(), &response);
  }

  std::vector<std::string> RegisteredSites() {
    const CommandResult result = federation_.Status();
    EXPECT_EQ(result.exit_code, 0) << result.output;
    std::vector<std::string> names;
    const nlohmann::json status = nlohmann::json::parse(result.output.substr(result.output.find('{')));
    for (const auto& site : status["sites"]) names.push_back(site["name"]);
    return names;
  }

  TestFederation federation_{{"hospital-a", "hospital-b"}};
  std::unique_ptr<Subprocess> coordinator_;
};

TEST_F(IdentityTest, SiteOfTheConsortiumRegisters) {
  EXPECT_TRUE(Register(federation_.Identity("hospital-a"), "hospital-a").ok());
  EXPECT_EQ(RegisteredSites(), std::vector<std::string>{"hospital-a"});
}

TEST_F(IdentityTest, CertificateFromAnotherCaIsRefusedAtTheHandshake) {
  TestFederation other({"hospital-a"}, "other-fed");
  // The intruder trusts our CA (so it accepts our coordinator) but holds another CA's certificate.
  rpc::TlsIdentity intruder = other.Identity("hospital-a");
  intruder.ca_pem = federation_.Identity("hospital-a").ca_pem;
  const grpc::Status status = Register(intruder, "hospital-a");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  const absl::Status probe = rpc::ProbeConnection(intruder, federation_.address(), "coordinator");
  EXPECT_EQ(probe.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(probe.message()), HasSubstr("refused our certificate"));
  EXPECT_THAT(std::string(probe.message()), HasSubstr("not from its consortium CA"));
  EXPECT_THAT(RegisteredSites(), ::testing::IsEmpty());
}

TEST_F(IdentityTest, ExpiredCertificateIsRefusedAndTheAgentSaysWhy) {
  const std::filesystem::path dir = federation_.root() / "expired";
  crypto::CertificateRequest request{"hospital-a", crypto::PartyRole::kSite, "test-fed", {}, {},
                                     absl::Now() - absl::Minutes(4), absl::Now() - absl::Minutes(1)};
  federation_.IssueCertificate(request, dir);
  const std::filesystem::path yaml = federation_.WriteSiteYaml(dir, "hospital-a", "hospital-a.crt",
                                                               "hospital-a.key",
                                                               federation_.Kit("hospital-a") / "ca.crt");
  const CommandResult check = RunCommand({AgentBinary(), "check", "--config", yaml.string()});
  EXPECT_EQ(check.exit_code, 1) << check.output;
  EXPECT_THAT(check.output, HasSubstr("refused our certificate"));
  EXPECT_THAT(check.output, HasSubstr("expired"));
  EXPECT_THAT(RegisteredSites(), ::testing::IsEmpty());
}

TEST_F(IdentityTest, NotYetValidCertificateIsRefusedAndTheAgentSaysWhy) {
  const std::filesystem::path dir = federation_.root() / "future";
  crypto::CertificateRequest request{"hospital-a", crypto::PartyRole::kSite, "test-fed", {}, {},
                                     absl::Now() + absl::Hours(1), absl::Now() + absl::Hours(2)};
  federation_.IssueCertificate(request, dir);
  const std::filesystem::path yaml = federation_.WriteSiteYaml(dir, "hospital-a", "hospital-a.crt",
                                                               "hospital-a.key",
                                                               federation_.Kit("hospital-a") / "ca.crt");
  const CommandResult check = RunCommand({AgentBinary(), "check", "--config", yaml.string()});
  EXPECT_EQ(check.exit_code, 1) << check.output;
  EXPECT_THAT(check.output, HasSubstr("refused our certificate"));
  EXPECT_THAT(check.output, HasSubstr("our certificate is not valid before"));
  EXPECT_THAT(RegisteredSites(), ::testing::IsEmpty());
}

// Repeats `call` every 100 ms, for up to 10 s, until the coordinator refuses it (it rereads its CRL
// directory at most once a second); returns the last status.
grpc::Status UntilRefused(const std::function<grpc::Status()>& call) {
  grpc::Status status = call();
  for (int i = 0; i < 100 && status.ok(); ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    status = call();
  }
  return status;
}

// `fedattn provision --revoke` writes a newer CRL into the running coordinator's kit: the next
// handshake of the revoked site fails, without a restart, while other sites carry on.
TEST(RevocationTest, RevokedSiteIsRefusedAtItsNextHandshake) {
  TestFederation federation({"hospital-a", "hospital-b"});
  federation.CheckRevocation(true);
  std::unique_ptr<Subprocess> coordinator = federation.StartCoordinator();
  auto register_site = [&](const std::string& site) {
    auto stub = v1::SiteService::NewStub(rpc::MakeChannel(federation.Identity(site), federation.address(),
                                                          "coordinator"));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::RegisterRequest request;
    request.set_site_name(site);
    v1::RegisterResponse response;
    return stub->Register(&context, request, &response);
  };
  ASSERT_TRUE(register_site("hospital-b").ok()) << "an empty CRL lets every consortium member in";
  // A connection made before the revocation, as an agent's long-lived one.
  auto connected = v1::SiteService::NewStub(rpc::MakeChannel(federation.Identity("hospital-b"),
                                                             federation.address(), "coordinator"));
  auto heartbeat = [&] {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::HeartbeatRequest request;
    request.set_site_name("hospital-b");
    v1::HeartbeatResponse response;
    return connected->Heartbeat(&context, request, &response);
  };
  ASSERT_TRUE(heartbeat().ok());

  const CommandResult revoke =
      RunCommand({CliBinary(), "provision", "--revoke", "hospital-b", "--out", federation.root().string()});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.output;
  EXPECT_THAT(revoke.output, HasSubstr("Revoked: hospital-b"));

  EXPECT_EQ(register_site("hospital-b").error_code(), grpc::StatusCode::UNAVAILABLE);
  const absl::Status probe =
      rpc::ProbeConnection(federation.Identity("hospital-b"), federation.address(), "coordinator");
  EXPECT_EQ(probe.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(probe.message()), HasSubstr("refused our certificate"));
  // The agent, with its kit's copy of the CRL (tls.crl_dir), says why it is refused.
  const std::filesystem::path kit = federation.Kit("hospital-b");
  const std::filesystem::path yaml = kit / "site-revoked.yaml";
  std::ofstream(yaml) << "site:\n  name: hospital-b\ncoordinator:\n  address: " << federation.address()
                      << "\n  name: coordinator\ntls:\n  ca: ca.crt\n  cert: hospital-b.crt\n  key: hospital-b.key\n"
                      << "  crl_dir: crl\n";
  const CommandResult check = RunCommand({AgentBinary(), "check", "--config", yaml.string()});
  EXPECT_EQ(check.exit_code, 1) << check.output;
  EXPECT_THAT(check.output, HasSubstr("our certificate has been revoked"));
  EXPECT_TRUE(register_site("hospital-a").ok());
  // The old connection is refused too, from its next call on.
  const grpc::Status status = UntilRefused(heartbeat);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("the certificate of site 'hospital-b' has been revoked"));

  const CommandResult again =
      RunCommand({CliBinary(), "provision", "--revoke", "hospital-b", "--out", federation.root().string()});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.output, HasSubstr("already revoked"));
}

// An operator's connection made before its certificate was revoked is refused from its next
// call on (the admin service checks the CRL on every call, as the site service does).
TEST(RevocationTest, RevokedAdminIsRefusedOnItsOpenConnection) {
  TestFederation federation({"hospital-a"});
  federation.CheckRevocation(true);
  std::unique_ptr<Subprocess> coordinator = federation.StartCoordinator();
  auto connected = v1::AdminService::NewStub(rpc::MakeChannel(federation.Identity("operator"),
                                                              federation.address(), "coordinator"));
  auto get_status = [&] {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::GetStatusResponse response;
    return connected->GetStatus(&context, v1::GetStatusRequest(), &response);
  };
  ASSERT_TRUE(get_status().ok());
  const CommandResult revoke =
      RunCommand({CliBinary(), "provision", "--revoke", "operator", "--out", federation.root().string()});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.output;
  const grpc::Status status = UntilRefused(get_status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("the certificate of admin 'operator' has been revoked"));
  EXPECT_TRUE(coordinator->WaitForLog("refused GetStatus", absl::Seconds(5)));
}

TEST_F(IdentityTest, SiteCertificateCannotCallTheAdminService) {
  const grpc::Status status = GetStatus(federation_.Identity("hospital-a"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("site certificate 'hospital-a' cannot call the admin service"));
  EXPECT_TRUE(coordinator_->WaitForLog("refused GetStatus", absl::Seconds(5)));
}

TEST_F(IdentityTest, AdminCertificateCannotActAsASite) {
  const grpc::Status status = Register(federation_.Identity("operator"), "operator");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("cannot call the site service"));
}

TEST_F(IdentityTest, SiteCannotRegisterUnderAnotherSitesName) {
  const grpc::Status status = Register(federation_.Identity("hospital-a"), "hospital-b");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(status.error_message(), HasSubstr("the certificate of site 'hospital-a' cannot act as site 'hospital-b'"));
  EXPECT_THAT(RegisteredSites(), ::testing::IsEmpty());
}

TEST_F(IdentityTest, AgentRefusesAConfigThatNamesAnotherSite) {
  const std::filesystem::path kit = federation_.Kit("hospital-a");
  const std::filesystem::path yaml =
      federation_.WriteSiteYaml(kit, "hospital-b", "hospital-a.crt", "hospital-a.key", kit / "ca.crt");
  const CommandResult run = RunCommand({AgentBinary(), "--config", yaml.string()});
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_THAT(run.output, HasSubstr("site.name is 'hospital-b' but the certificate"));
}

TEST_F(IdentityTest, AgentRefusesACoordinatorWithTheWrongName) {
  const std::filesystem::path kit = federation_.Kit("hospital-a");
  const std::filesystem::path yaml = federation_.WriteSiteYaml(kit, "hospital-a", "hospital-a.crt",
                                                               "hospital-a.key", kit / "ca.crt", "not-the-coordinator");
  const CommandResult check = RunCommand({AgentBinary(), "check", "--config", yaml.string()});
  EXPECT_EQ(check.exit_code, 1) << check.output;
  EXPECT_THAT(check.output, HasSubstr("does not name 'not-the-coordinator'"));
}

TEST_F(IdentityTest, AgentSaysWhenNothingListens) {
  const std::filesystem::path kit = federation_.Kit("hospital-a");
  const std::filesystem::path yaml =
      federation_.WriteSiteYaml(kit, "hospital-a", "hospital-a.crt", "hospital-a.key", kit / "ca.crt");
  coordinator_->Signal(SIGKILL);
  coordinator_->Wait(absl::Seconds(10));
  const CommandResult check = RunCommand({AgentBinary(), "check", "--config", yaml.string()});
  EXPECT_EQ(check.exit_code, 1);
  EXPECT_THAT(check.output, HasSubstr("Connection refused"));
}

}  // namespace
}  // namespace fedattn::testing
