// X.509 certificates for the consortium: a CA, and one certificate per party whose subject
// carries the party's name (CN), role (OU) and federation (O). Built with the OpenSSL 3 API.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fedattn/crypto/keys.h"

namespace fedattn::crypto {

enum class PartyRole { kCa, kCoordinator, kSite, kAdmin };

absl::string_view RoleName(PartyRole role);  // "ca", "coordinator", "site", "admin"
[[nodiscard]] absl::StatusOr<PartyRole> ParseRole(absl::string_view name);

struct CertificateRequest {
  std::string name;        // party name, the subject CN: [A-Za-z0-9._-], 1..64 characters
  PartyRole role = PartyRole::kSite;
  std::string federation;  // subject O
  std::vector<std::string> dns_names;     // subjectAltName DNS entries (the coordinator's hosts)
  std::vector<std::string> ip_addresses;  // subjectAltName IP entries
  absl::Time not_before;
  absl::Time not_after;
};

// Checks that `name` is a valid party name; the message says which character is wrong.
[[nodiscard]] absl::Status ValidatePartyName(absl::string_view name);

// Issues a certificate for `subject_key`'s public key, signed by `issuer_key`. With a null
// `issuer_cert` the certificate is a self-signed CA (role must be kCa). Coordinators get
// serverAuth+clientAuth, sites and admins clientAuth only.
[[nodiscard]] absl::StatusOr<X509Ptr> IssueCertificate(const CertificateRequest& request,
                                                       EVP_PKEY* subject_key, X509* issuer_cert,
                                                       EVP_PKEY* issuer_key);

[[nodiscard]] absl::StatusOr<std::string> CertificateToPem(X509* cert);
[[nodiscard]] absl::StatusOr<X509Ptr> CertificateFromPem(absl::string_view pem);

// What a FedAttn party is, read off its certificate.
struct CertificateInfo {
  std::string name;
  PartyRole role = PartyRole::kSite;
  std::string federation;
  std::string fingerprint;  // lowercase hex SHA-256 of the DER encoding
  absl::Time not_before;
  absl::Time not_after;
};

// INVALID_ARGUMENT if the certificate lacks a CN, a known role in OU, or an O.
[[nodiscard]] absl::StatusOr<CertificateInfo> InspectCertificate(X509* cert);
[[nodiscard]] absl::StatusOr<CertificateInfo> InspectCertificatePem(absl::string_view pem);

// Verifies `cert` against the CA at time `now` (signature, validity window, purpose-free).
// UNAUTHENTICATED with OpenSSL's verification reason ("certificate has expired", …).
[[nodiscard]] absl::Status VerifyCertificate(X509* cert, X509* ca, absl::Time now);

}  // namespace fedattn::crypto
