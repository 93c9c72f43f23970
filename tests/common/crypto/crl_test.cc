#include "fedattn/crypto/crl.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "fedattn/crypto/certificate.h"
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
  ca.cert = *IssueCertificate(request, ca.key.get(), nullptr, ca.key.get());
  return ca;
}

X509Ptr Issue(const Ca& ca, const std::string& name) {
  PKeyPtr key = *GenerateEd25519Key();
  CertificateRequest request{name, PartyRole::kSite, "test-fed", {}, {}, kNow - absl::Hours(1), kNow + absl::Hours(1)};
  return *IssueCertificate(request, key.get(), ca.cert.get(), ca.key.get());
}

CrlContents Contents(uint64_t number, std::vector<RevokedCertificate> revoked) {
  return CrlContents{number, kNow - absl::Minutes(1), kNow + absl::Hours(24), std::move(revoked)};
}

TEST(CrlTest, RoundTripKeepsNumberTimesAndEntries) {
  Ca ca = MakeCa();
  X509Ptr site = Issue(ca, "hospital-a");
  const std::string serial = CertificateSerialHex(site.get());
  ASSERT_FALSE(serial.empty());
  auto pem = IssueCrlPem(Contents(3, {{serial, kNow - absl::Seconds(30)}}), ca.cert.get(), ca.key.get());
  ASSERT_TRUE(pem.ok()) << pem.status();
  EXPECT_THAT(*pem, HasSubstr("BEGIN X509 CRL"));
  auto read = ReadCrlPem(*pem, ca.cert.get());
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->number, 3u);
  EXPECT_EQ(read->this_update, kNow - absl::Minutes(1));
  EXPECT_EQ(read->next_update, kNow + absl::Hours(24));
  ASSERT_EQ(read->revoked.size(), 1u);
  EXPECT_EQ(read->revoked[0].serial_hex, serial);
  EXPECT_EQ(read->revoked[0].revoked_at, kNow - absl::Seconds(30));
}

TEST(CrlTest, RevokedCertificateFailsVerificationOthersPass) {
  Ca ca = MakeCa();
  X509Ptr revoked = Issue(ca, "hospital-a");
  X509Ptr kept = Issue(ca, "hospital-b");
  auto pem = IssueCrlPem(Contents(1, {{CertificateSerialHex(revoked.get()), kNow - absl::Seconds(30)}}),
                         ca.cert.get(), ca.key.get());
  ASSERT_TRUE(pem.ok()) << pem.status();
  const absl::Status refused = VerifyCertificateWithCrl(revoked.get(), ca.cert.get(), *pem, kNow);
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("certificate revoked"));
  EXPECT_TRUE(VerifyCertificateWithCrl(kept.get(), ca.cert.get(), *pem, kNow).ok());
}

TEST(CrlTest, EmptyCrlLetsEveryCertificateOfTheCaThrough) {
  Ca ca = MakeCa();
  X509Ptr site = Issue(ca, "hospital-a");
  auto pem = IssueCrlPem(Contents(0, {}), ca.cert.get(), ca.key.get());
  ASSERT_TRUE(pem.ok()) << pem.status();
  EXPECT_TRUE(VerifyCertificateWithCrl(site.get(), ca.cert.get(), *pem, kNow).ok());
}

TEST(CrlTest, CrlOfAnotherCaIsNotAccepted) {
  Ca ca = MakeCa();
  Ca other = MakeCa("other-fed");
  auto pem = IssueCrlPem(Contents(0, {}), other.cert.get(), other.key.get());
  ASSERT_TRUE(pem.ok());
  const auto read = ReadCrlPem(*pem, ca.cert.get());
  EXPECT_EQ(read.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(read.status().message()), HasSubstr("not issued and signed by this CA"));
  // With only another CA's CRL, TLS cannot tell whether the certificate is revoked: refused.
  X509Ptr site = Issue(ca, "hospital-a");
  const absl::Status status = VerifyCertificateWithCrl(site.get(), ca.cert.get(), *pem, kNow);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(status.message()), HasSubstr("unable to get certificate CRL"));
}

TEST(CrlTest, ExpiredCrlIsRefused) {
  Ca ca = MakeCa();
  X509Ptr site = Issue(ca, "hospital-a");
  CrlContents contents{0, kNow - absl::Hours(2), kNow - absl::Hours(1), {}};
  auto pem = IssueCrlPem(contents, ca.cert.get(), ca.key.get());
  ASSERT_TRUE(pem.ok());
  const absl::Status status = VerifyCertificateWithCrl(site.get(), ca.cert.get(), *pem, kNow);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(status.message()), HasSubstr("CRL has expired"));
}

TEST(CrlTest, BadInputsAreInvalidArguments) {
  Ca ca = MakeCa();
  EXPECT_EQ(ReadCrlPem("not a crl", ca.cert.get()).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(IssueCrlPem(Contents(0, {{"XYZ", kNow}}), ca.cert.get(), ca.key.get()).status().code(),
            absl::StatusCode::kInvalidArgument);
  CrlContents backwards{0, kNow, kNow - absl::Seconds(1), {}};
  EXPECT_EQ(IssueCrlPem(backwards, ca.cert.get(), ca.key.get()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CrlTest, FileNameIsTheCaSubjectHashWithTheIndex) {
  Ca ca = MakeCa();
  const std::string name = CrlFileName(ca.cert.get(), 2);
  EXPECT_EQ(name.size(), 11u);
  EXPECT_EQ(name.substr(8), ".r2");
  EXPECT_EQ(CrlFileName(ca.cert.get(), 0).substr(0, 8), name.substr(0, 8));
}

TEST(CrlTest, RevocationListFollowsTheDirectory) {
  Ca ca = MakeCa();
  X509Ptr site = Issue(ca, "hospital-a");
  const std::string site_pem = *CertificateToPem(site.get());
  const std::string ca_pem = *CertificateToPem(ca.cert.get());
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("crl-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  RevocationList list(dir, ca_pem, absl::ZeroDuration());
  EXPECT_FALSE(list.IsRevoked(site_pem)) << "no CRL yet";
  std::ofstream(dir / CrlFileName(ca.cert.get(), 0)) << *IssueCrlPem(Contents(0, {}), ca.cert.get(), ca.key.get());
  EXPECT_FALSE(list.IsRevoked(site_pem));
  std::ofstream(dir / CrlFileName(ca.cert.get(), 1))
      << *IssueCrlPem(Contents(1, {{CertificateSerialHex(site.get()), kNow}}), ca.cert.get(), ca.key.get());
  EXPECT_TRUE(list.IsRevoked(site_pem));
  // Another CA's CRL listing the same serial does not count.
  Ca other = MakeCa("other-fed");
  RevocationList foreign(dir, *CertificateToPem(other.cert.get()), absl::ZeroDuration());
  EXPECT_FALSE(foreign.IsRevoked(site_pem));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fedattn::crypto
