#include "fedattn/crypto/certificate.h"

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedattn::crypto {
namespace {

using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1'790'000'000);

struct Ca {
  PKeyPtr key;
  X509Ptr cert;
};

Ca MakeCa(const std::string& federation = "test-fed") {
  Ca ca;
  ca.key = *GenerateEd25519Key();
  CertificateRequest request{federation + "-ca", PartyRole::kCa, federation, {}, {}, kNow - absl::Hours(1),
                             kNow + absl::Hours(24)};
  auto cert = IssueCertificate(request, ca.key.get(), nullptr, ca.key.get());
  EXPECT_TRUE(cert.ok()) << cert.status();
  ca.cert = *std::move(cert);
  return ca;
}

X509Ptr Issue(const Ca& ca, const std::string& name, PartyRole role, absl::Time not_before, absl::Time not_after) {
  PKeyPtr key = *GenerateEd25519Key();
  CertificateRequest request{name, role, "test-fed", {"localhost"}, {"127.0.0.1"}, not_before, not_after};
  auto cert = IssueCertificate(request, key.get(), ca.cert.get(), ca.key.get());
  EXPECT_TRUE(cert.ok()) << cert.status();
  return *std::move(cert);
}

TEST(CertificateTest, CarriesNameRoleAndFederation) {
  Ca ca = MakeCa();
  X509Ptr cert = Issue(ca, "hospital-a", PartyRole::kSite, kNow - absl::Hours(1), kNow + absl::Hours(1));
  auto info = InspectCertificate(cert.get());
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->name, "hospital-a");
  EXPECT_EQ(info->role, PartyRole::kSite);
  EXPECT_EQ(info->federation, "test-fed");
  EXPECT_EQ(info->fingerprint.size(), 64u);
  EXPECT_EQ(info->not_after, kNow + absl::Hours(1));
}

TEST(CertificateTest, PemRoundTripKeepsFingerprint) {
  Ca ca = MakeCa();
  X509Ptr cert = Issue(ca, "alice", PartyRole::kAdmin, kNow - absl::Hours(1), kNow + absl::Hours(1));
  auto pem = CertificateToPem(cert.get());
  ASSERT_TRUE(pem.ok());
  auto from_pem = InspectCertificatePem(*pem);
  ASSERT_TRUE(from_pem.ok());
  EXPECT_EQ(from_pem->fingerprint, InspectCertificate(cert.get())->fingerprint);
  EXPECT_EQ(from_pem->role, PartyRole::kAdmin);
}

TEST(CertificateTest, VerifiesAgainstItsCaInsideItsWindow) {
  Ca ca = MakeCa();
  X509Ptr cert = Issue(ca, "hospital-a", PartyRole::kSite, kNow - absl::Hours(1), kNow + absl::Hours(1));
  EXPECT_TRUE(VerifyCertificate(cert.get(), ca.cert.get(), kNow).ok());
}

TEST(CertificateTest, ExpiredCertificateIsRefused) {
  Ca ca = MakeCa();
  X509Ptr cert = Issue(ca, "hospital-a", PartyRole::kSite, kNow - absl::Hours(2), kNow - absl::Hours(1));
  const absl::Status status = VerifyCertificate(cert.get(), ca.cert.get(), kNow);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(status.message()), HasSubstr("expired"));
}

TEST(CertificateTest, NotYetValidCertificateIsRefused) {
  Ca ca = MakeCa();
  X509Ptr cert = Issue(ca, "hospital-a", PartyRole::kSite, kNow + absl::Hours(1), kNow + absl::Hours(2));
  const absl::Status status = VerifyCertificate(cert.get(), ca.cert.get(), kNow);
  EXPECT_THAT(std::string(status.message()), HasSubstr("not yet valid"));
}

TEST(CertificateTest, CertificateFromAnotherCaIsRefused) {
  Ca ca = MakeCa();
  Ca other = MakeCa("other-fed");
  X509Ptr cert = Issue(other, "hospital-a", PartyRole::kSite, kNow - absl::Hours(1), kNow + absl::Hours(1));
  EXPECT_EQ(VerifyCertificate(cert.get(), ca.cert.get(), kNow).code(), absl::StatusCode::kUnauthenticated);
}

TEST(CertificateTest, RejectsBadPartyNames) {
  EXPECT_TRUE(ValidatePartyName("hospital-a.01_x").ok());
  EXPECT_THAT(std::string(ValidatePartyName("bad name").message()), HasSubstr("contains ' '"));
  EXPECT_FALSE(ValidatePartyName("").ok());
  EXPECT_FALSE(ValidatePartyName(std::string(65, 'a')).ok());
  EXPECT_FALSE(ValidatePartyName("a/b").ok());
}

TEST(CertificateTest, RefusesInvertedValidity) {
  Ca ca = MakeCa();
  PKeyPtr key = *GenerateEd25519Key();
  CertificateRequest request{"x", PartyRole::kSite, "f", {}, {}, kNow, kNow - absl::Hours(1)};
  EXPECT_FALSE(IssueCertificate(request, key.get(), ca.cert.get(), ca.key.get()).ok());
}

TEST(CertificateTest, GarbagePemIsInvalidArgument) {
  auto cert = CertificateFromPem("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n");
  EXPECT_EQ(cert.status().code(), absl::StatusCode::kInvalidArgument);
  auto key = PrivateKeyFromPem("not a key");
  EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CertificateTest, KeyPemRoundTrip) {
  PKeyPtr key = *GenerateEd25519Key();
  auto pem = PrivateKeyToPem(key.get());
  ASSERT_TRUE(pem.ok());
  EXPECT_THAT(pem->value(), HasSubstr("BEGIN PRIVATE KEY"));
  auto back = PrivateKeyFromPem(pem->value());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(EVP_PKEY_eq(key.get(), back->get()), 1);
}

TEST(CertificateTest, RoleNamesRoundTrip) {
  for (PartyRole role : {PartyRole::kCa, PartyRole::kCoordinator, PartyRole::kSite, PartyRole::kAdmin}) {
    EXPECT_EQ(*ParseRole(RoleName(role)), role);
  }
  EXPECT_FALSE(ParseRole("root").ok());
}

}  // namespace
}  // namespace fedattn::crypto
