#include "fedattn/crypto/crl.h"

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <ctime>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fedattn/common/files.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/crypto/certificate.h"
#include "fedattn/crypto/openssl_error.h"
#include "openssl_util.h"

namespace fedattn::crypto {
namespace {

std::string SerialHex(const ASN1_INTEGER* serial) {
  BignumPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (!bn) return "";
  char* hex = BN_bn2hex(bn.get());
  std::string out = hex == nullptr ? "" : hex;
  OPENSSL_free(hex);
  return out;
}

absl::StatusOr<X509CrlPtr> ParseCrl(absl::string_view pem) {
  BioPtr bio = ReadOnlyBio(pem);
  if (!bio) return OpenSslError("cannot allocate a BIO");
  X509CrlPtr crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
  if (!crl) return OpenSslError("not a PEM certificate revocation list", absl::StatusCode::kInvalidArgument);
  return crl;
}

}  // namespace

std::string CertificateSerialHex(X509* cert) { return SerialHex(X509_get0_serialNumber(cert)); }

absl::StatusOr<std::string> IssueCrlPem(const CrlContents& contents, X509* ca_cert, EVP_PKEY* ca_key) {
  if (contents.next_update <= contents.this_update) {
    return absl::InvalidArgumentError("CRL next_update must be later than this_update");
  }
  X509CrlPtr crl(X509_CRL_new());
  if (!crl || X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca_cert)) != 1) {
    return OpenSslError("cannot start a CRL");
  }
  Asn1TimePtr last(ASN1_TIME_set(nullptr, absl::ToTimeT(contents.this_update)));
  Asn1TimePtr next(ASN1_TIME_set(nullptr, absl::ToTimeT(contents.next_update)));
  if (!last || !next || X509_CRL_set1_lastUpdate(crl.get(), last.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next.get()) != 1) {
    return OpenSslError("cannot set the CRL's update times");
  }
  for (const RevokedCertificate& entry : contents.revoked) {
    BIGNUM* raw = nullptr;
    if (entry.serial_hex.empty() || BN_hex2bn(&raw, entry.serial_hex.c_str()) != static_cast<int>(entry.serial_hex.size())) {
      BN_free(raw);
      DrainOpenSslErrors();
      return absl::InvalidArgumentError(absl::StrCat("'", entry.serial_hex, "' is not a hexadecimal serial number"));
    }
    BignumPtr bn(raw);
    Asn1IntegerPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
    Asn1TimePtr when(ASN1_TIME_set(nullptr, absl::ToTimeT(entry.revoked_at)));
    X509RevokedPtr revoked(X509_REVOKED_new());
    if (!serial || !when || !revoked || X509_REVOKED_set_serialNumber(revoked.get(), serial.get()) != 1 ||
        X509_REVOKED_set_revocationDate(revoked.get(), when.get()) != 1 ||
        X509_CRL_add0_revoked(crl.get(), revoked.get()) != 1) {
      return OpenSslError("cannot add a CRL entry");
    }
    revoked.release();  // owned by the CRL now
  }
  Asn1IntegerPtr number(ASN1_INTEGER_new());
  if (!number || ASN1_INTEGER_set_uint64(number.get(), contents.number) != 1 ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, 0) != 1) {
    return OpenSslError("cannot set the CRL number");
  }
  X509_CRL_sort(crl.get());
  // Ed25519 signs the message itself (RFC 8032): no digest.
  const int id = EVP_PKEY_get_id(ca_key);
  const EVP_MD* md = (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448) ? nullptr : EVP_sha256();
  if (X509_CRL_sign(crl.get(), ca_key, md) <= 0) return OpenSslError("cannot sign the CRL");
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_CRL(bio.get(), crl.get()) != 1) return OpenSslError("cannot encode the CRL");
  return BioContents(bio.get());
}

absl::StatusOr<CrlContents> ReadCrlPem(absl::string_view pem, X509* ca_cert) {
  ASSIGN_OR_RETURN(X509CrlPtr crl, ParseCrl(pem));
  if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(ca_cert)) != 0 ||
      X509_CRL_verify(crl.get(), X509_get0_pubkey(ca_cert)) != 1) {
    DrainOpenSslErrors();
    return absl::UnauthenticatedError("the CRL was not issued and signed by this CA");
  }
  CrlContents contents;
  contents.this_update = FromAsn1Time(X509_CRL_get0_lastUpdate(crl.get()));
  contents.next_update = FromAsn1Time(X509_CRL_get0_nextUpdate(crl.get()));
  Asn1IntegerPtr number(
      static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl.get(), NID_crl_number, nullptr, nullptr)));
  uint64_t value = 0;
  if (number && ASN1_INTEGER_get_uint64(&value, number.get()) == 1) contents.number = value;
  const STACK_OF(X509_REVOKED)* entries = X509_CRL_get_REVOKED(crl.get());
  for (int i = 0; i < sk_X509_REVOKED_num(entries); ++i) {
    const X509_REVOKED* entry = sk_X509_REVOKED_value(entries, i);
    contents.revoked.push_back(RevokedCertificate{SerialHex(X509_REVOKED_get0_serialNumber(entry)),
                                                  FromAsn1Time(X509_REVOKED_get0_revocationDate(entry))});
  }
  DrainOpenSslErrors();
  return contents;
}

std::string CrlFileName(X509* ca_cert, int index) {
  char name[32];
  std::snprintf(name, sizeof(name), "%08lx.r%d", X509_subject_name_hash(ca_cert), index);
  return name;
}

absl::Status VerifyCertificateWithCrl(X509* cert, X509* ca_cert, absl::string_view crl_pem, absl::Time now) {
  ASSIGN_OR_RETURN(X509CrlPtr crl, ParseCrl(crl_pem));
  return VerifyChain(cert, ca_cert, crl.get(), now);
}

bool RevocationList::IsRevoked(absl::string_view cert_pem) {
  auto cert = CertificateFromPem(cert_pem);
  if (!cert.ok()) return false;
  const std::string serial = CertificateSerialHex(cert->get());
  absl::MutexLock lock(&mu_);
  RefreshLocked();
  return revoked_.count(serial) > 0;
}

void RevocationList::RefreshLocked() {
  const absl::Time now = absl::Now();
  if (now - checked_ < recheck_) return;
  checked_ = now;
  std::string listing;
  std::vector<std::filesystem::path> files;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(crl_dir_, error)) {
    std::error_code ignored;
    const auto size = entry.file_size(ignored);
    const auto time = entry.last_write_time(ignored).time_since_epoch().count();
    absl::StrAppend(&listing, entry.path().filename().string(), ":", size, ":", time, ";");
    files.push_back(entry.path());
  }
  if (listing == listing_) return;
  listing_ = listing;
  auto ca = CertificateFromPem(ca_pem_);
  if (!ca.ok()) return;
  std::set<std::string> revoked;
  for (const std::filesystem::path& file : files) {
    auto pem = ReadFile(file);
    if (!pem.ok()) continue;
    auto crl = ReadCrlPem(*pem, ca->get());
    if (!crl.ok()) continue;
    for (const RevokedCertificate& entry : crl->revoked) revoked.insert(entry.serial_hex);
  }
  revoked_ = std::move(revoked);
}

}  // namespace fedattn::crypto
