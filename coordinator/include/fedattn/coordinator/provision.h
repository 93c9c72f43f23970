// `fedattn provision`: a consortium CA and one startup kit per party (certificate, private key,
// the party's YAML and a start script), like a VPN profile per site.
//
//   OUT/ca/ca.crt, ca.key        the consortium CA (the key never leaves the operator)
//   OUT/kits/<party>/            one kit per coordinator, site and admin
//       ca.crt <party>.crt <party>.key (0600) <role>.yaml start.sh
//       crl/<hash>.r<N>          the CA's revocation lists (tls.crl_dir), checked on every handshake
//   OUT/ca/ca.crl                the latest revocation list
#pragma once

#include <filesystem>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "fedattn/coordinator/federation_config.h"
#include "fedattn/crypto/certificate.h"

namespace fedattn::coordinator {

// Writes the CA and every kit under `out`. FAILED_PRECONDITION if `out` already holds a CA:
// provisioning again would replace the consortium's root of trust.
[[nodiscard]] absl::Status Provision(const FederationConfig& config, const std::filesystem::path& out,
                                     absl::Time now);

// Issues one more certificate with the CA under `out` (adding a site later, renewing, tests that
// need an expired certificate) and writes <dir>/<name>.crt and <dir>/<name>.key (0600).
[[nodiscard]] absl::Status IssuePartyCertificate(const std::filesystem::path& out,
                                                 const crypto::CertificateRequest& request,
                                                 const std::filesystem::path& dir);

// Revokes the certificate in the kit of `party` (OUT/kits/<party>/<party>.crt): issues the
// CA's next CRL, listing it and everything revoked before, into OUT/ca/ca.crl and as the next
// crl/<hash>.r<N> of every kit under OUT/kits (older lists stay: OpenSSL reads r0, r1, ... and
// uses the newest). A party whose TLS layer reads that directory refuses the certificate at its
// next handshake, without a restart. NOT_FOUND for an unknown party, ALREADY_EXISTS if its
// certificate is already revoked.
[[nodiscard]] absl::Status RevokeParty(const std::filesystem::path& out, const std::string& party, absl::Time now);

}  // namespace fedattn::coordinator
