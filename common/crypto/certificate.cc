#include "fedattn/crypto/certificate.h"

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/crypto/digest.h"
#include "fedattn/crypto/openssl_error.h"
#include "openssl_util.h"

namespace fedattn::crypto {
namespace {

absl::Status AddNameEntry(X509_NAME* name, const char* field, absl::string_view value) {
  if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(value.data()),
                                 static_cast<int>(value.size()), -1, 0) != 1) {
    return OpenSslError(absl::StrCat("cannot set certificate subject field ", field));
  }
  return absl::OkStatus();
}

absl::Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509ExtensionPtr ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext) return OpenSslError(absl::StrCat("cannot build certificate extension ", OBJ_nid2sn(nid), "=", value));
  if (X509_add_ext(cert, ext.get(), -1) != 1) return OpenSslError("cannot add certificate extension");
  return absl::OkStatus();
}

std::string NameField(X509_NAME* name, int nid) {
  const int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) return "";
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  const int size = ASN1_STRING_to_UTF8(&utf8, data);
  if (size < 0) return "";
  std::string value(reinterpret_cast<char*>(utf8), static_cast<size_t>(size));
  OPENSSL_free(utf8);
  return value;
}

const EVP_MD* DigestFor(EVP_PKEY* key) {
  // Ed25519/Ed448 sign the message directly (RFC 8032); other key types hash with SHA-256.
  const int id = EVP_PKEY_get_id(key);
  return (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448) ? nullptr : EVP_sha256();
}

}  // namespace

absl::string_view RoleName(PartyRole role) {
  switch (role) {
    case PartyRole::kCa: return "ca";
    case PartyRole::kCoordinator: return "coordinator";
    case PartyRole::kSite: return "site";
    case PartyRole::kAdmin: return "admin";
  }
  return "unknown";
}

absl::StatusOr<PartyRole> ParseRole(absl::string_view name) {
  for (PartyRole role : {PartyRole::kCa, PartyRole::kCoordinator, PartyRole::kSite, PartyRole::kAdmin}) {
    if (RoleName(role) == name) return role;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown party role '", name, "' (ca, coordinator, site, admin)"));
}

absl::Status ValidatePartyName(absl::string_view name) {
  if (name.empty() || name.size() > 64) {
    return absl::InvalidArgumentError(absl::StrCat("party name '", name, "' must have 1 to 64 characters"));
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("party name '", name, "' contains '", std::string(1, c),
                       "': use letters, digits, '.', '_' and '-'"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<X509Ptr> IssueCertificate(const CertificateRequest& request, EVP_PKEY* subject_key,
                                         X509* issuer_cert, EVP_PKEY* issuer_key) {
  RETURN_IF_ERROR(ValidatePartyName(request.name));
  const bool is_ca = request.role == PartyRole::kCa;
  if (is_ca != (issuer_cert == nullptr)) {
    return absl::InvalidArgumentError("only the CA certificate is self-signed, and it must be");
  }
  if (request.not_after <= request.not_before) {
    return absl::InvalidArgumentError("certificate not_after must be later than not_before");
  }
  X509Ptr cert(X509_new());
  if (!cert) return OpenSslError("cannot allocate a certificate");
  X509_set_version(cert.get(), X509_VERSION_3);

  BignumPtr serial(BN_new());
  if (!serial || BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    return OpenSslError("cannot draw a certificate serial number");
  }
  if (ASN1_TIME_set(X509_getm_notBefore(cert.get()), absl::ToTimeT(request.not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), absl::ToTimeT(request.not_after)) == nullptr) {
    return OpenSslError("cannot set the certificate validity");
  }

  X509_NAME* subject = X509_get_subject_name(cert.get());
  RETURN_IF_ERROR(AddNameEntry(subject, "O", request.federation));
  RETURN_IF_ERROR(AddNameEntry(subject, "OU", RoleName(request.role)));
  RETURN_IF_ERROR(AddNameEntry(subject, "CN", request.name));
  X509* issuer = is_ca ? cert.get() : issuer_cert;
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer)) != 1 ||
      X509_set_pubkey(cert.get(), subject_key) != 1) {
    return OpenSslError("cannot set the certificate issuer or public key");
  }

  RETURN_IF_ERROR(AddExtension(cert.get(), issuer, NID_basic_constraints,
                               is_ca ? "critical,CA:TRUE,pathlen:0" : "critical,CA:FALSE"));
  RETURN_IF_ERROR(AddExtension(cert.get(), issuer, NID_key_usage,
                               is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature"));
  RETURN_IF_ERROR(AddExtension(cert.get(), issuer, NID_subject_key_identifier, "hash"));
  if (!is_ca) {
    RETURN_IF_ERROR(AddExtension(cert.get(), issuer, NID_authority_key_identifier, "keyid:always"));
    RETURN_IF_ERROR(AddExtension(cert.get(), issuer, NID_ext_key_usage,
                                 request.role == PartyRole::kCoordinator ? "serverAuth,clientAuth" : "clientAuth"));
  }
  std::vector<std::string> alt_names = {absl::StrCat("DNS:", request.name)};
  for (const std::string& dns : request.dns_names) alt_names.push_back(absl::StrCat("DNS:", dns));
  for (const std::string& ip : request.ip_addresses) alt_names.push_back(absl::StrCat("IP:", ip));
  RETURN_IF_ERROR(AddExtension(cert.get(), issuer, NID_subject_alt_name, absl::StrJoin(alt_names, ",")));

  if (X509_sign(cert.get(), issuer_key, DigestFor(issuer_key)) <= 0) {
    return OpenSslError("cannot sign the certificate");
  }
  return cert;
}

absl::StatusOr<std::string> CertificateToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return OpenSslError("cannot encode the certificate");
  return BioContents(bio.get());
}

absl::StatusOr<X509Ptr> CertificateFromPem(absl::string_view pem) {
  BioPtr bio = ReadOnlyBio(pem);
  if (!bio) return OpenSslError("cannot allocate a BIO");
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return OpenSslError("not a PEM certificate", absl::StatusCode::kInvalidArgument);
  return cert;
}

absl::StatusOr<CertificateInfo> InspectCertificate(X509* cert) {
  CertificateInfo info;
  X509_NAME* subject = X509_get_subject_name(cert);
  info.name = NameField(subject, NID_commonName);
  info.federation = NameField(subject, NID_organizationName);
  const std::string role = NameField(subject, NID_organizationalUnitName);
  if (info.name.empty()) return absl::InvalidArgumentError("certificate has no subject CN (party name)");
  auto parsed_role = ParseRole(role);
  if (!parsed_role.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate for '", info.name, "' has no FedAttn role in its OU (found '", role, "')"));
  }
  info.role = *parsed_role;
  unsigned char* der = nullptr;
  const int der_size = i2d_X509(cert, &der);
  if (der_size <= 0) return OpenSslError("cannot DER-encode the certificate");
  info.fingerprint = ToHex(Sha256(std::span<const uint8_t>(der, static_cast<size_t>(der_size))));
  OPENSSL_free(der);
  info.not_before = FromAsn1Time(X509_get0_notBefore(cert));
  info.not_after = FromAsn1Time(X509_get0_notAfter(cert));
  return info;
}

absl::StatusOr<CertificateInfo> InspectCertificatePem(absl::string_view pem) {
  ASSIGN_OR_RETURN(X509Ptr cert, CertificateFromPem(pem));
  return InspectCertificate(cert.get());
}

absl::Status VerifyChain(X509* cert, X509* ca, X509_CRL* crl, absl::Time now) {
  X509StorePtr store(X509_STORE_new());
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !ctx || X509_STORE_add_cert(store.get(), ca) != 1 ||
      (crl != nullptr && X509_STORE_add_crl(store.get(), crl) != 1) ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert, nullptr) != 1) {
    return OpenSslError("cannot set up certificate verification");
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  // With a CRL, the flags gRPC sets when given a CRL directory.
  if (crl != nullptr) X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
  X509_VERIFY_PARAM_set_time(param, absl::ToTimeT(now));
  if (X509_verify_cert(ctx.get()) != 1) {
    const int error = X509_STORE_CTX_get_error(ctx.get());
    DrainOpenSslErrors();
    return absl::UnauthenticatedError(
        absl::StrCat("certificate verification failed: ", X509_verify_cert_error_string(error)));
  }
  return absl::OkStatus();
}

absl::Status VerifyCertificate(X509* cert, X509* ca, absl::Time now) { return VerifyChain(cert, ca, nullptr, now); }

}  // namespace fedattn::crypto
