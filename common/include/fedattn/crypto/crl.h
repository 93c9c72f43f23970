// Certificate revocation lists (RFC 5280 section 5) for the consortium CA: `fedattn provision
// --revoke` issues them, every party's TLS layer checks the peer against them on each handshake
// (rpc::TlsFiles::crl_dir, the hashed-directory layout OpenSSL's X509_LOOKUP_hash_dir reads).
#pragma once

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fedattn/crypto/keys.h"

namespace fedattn::crypto {

struct RevokedCertificate {
  std::string serial_hex;  // the certificate's serial number, uppercase hex as OpenSSL prints it
  absl::Time revoked_at;
};

struct CrlContents {
  uint64_t number = 0;      // the cRLNumber extension: grows by one with every CRL the CA issues
  absl::Time this_update;   // when it was issued (lastUpdate)
  absl::Time next_update;   // when a newer one is due
  std::vector<RevokedCertificate> revoked;
};

// The serial number of `cert` in the form RevokedCertificate::serial_hex uses.
[[nodiscard]] std::string CertificateSerialHex(X509* cert);

// A CRL listing `contents.revoked`, signed by the CA, PEM-encoded. INVALID_ARGUMENT for a bad
// serial or next_update not after this_update.
[[nodiscard]] absl::StatusOr<std::string> IssueCrlPem(const CrlContents& contents, X509* ca_cert, EVP_PKEY* ca_key);

// Parses a PEM CRL and checks that `ca_cert` issued and signed it. INVALID_ARGUMENT when it is not
// a CRL, UNAUTHENTICATED when the CA did not sign it.
[[nodiscard]] absl::StatusOr<CrlContents> ReadCrlPem(absl::string_view pem, X509* ca_cert);

// The file name a CRL of `ca_cert` takes in a hashed CRL directory: "<subject hash>.r<index>".
// OpenSSL reads index 0, 1, 2 ... in order until one is missing, and of the CRLs it holds uses
// the most recent, so a newer CRL goes into the next free index and older ones stay.
[[nodiscard]] std::string CrlFileName(X509* ca_cert, int index);

// VerifyCertificate (certificate.h) plus the revocation check TLS does: UNAUTHENTICATED with
// OpenSSL's reason ("certificate revoked", "unable to get certificate CRL", ...).
[[nodiscard]] absl::Status VerifyCertificateWithCrl(X509* cert, X509* ca_cert, absl::string_view crl_pem,
                                                    absl::Time now);

// The serial numbers the CRLs of a hashed CRL directory revoke, for checking the calls of
// connections made before a revocation: TLS looks at a CRL only during the handshake, and an
// agent's connection can last for days. Reloads when the directory's files change, looking at
// most once a second. Thread-safe.
class RevocationList {
 public:
  // `ca_pem`: the CA whose CRLs count (others are ignored); `recheck`: how often at most the
  // directory is looked at again.
  RevocationList(std::filesystem::path crl_dir, std::string ca_pem, absl::Duration recheck = absl::Seconds(1))
      : crl_dir_(std::move(crl_dir)), ca_pem_(std::move(ca_pem)), recheck_(recheck) {}
  // Whether a CRL of the CA in the directory lists `cert_pem` now.
  bool IsRevoked(absl::string_view cert_pem) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void RefreshLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::filesystem::path crl_dir_;
  const std::string ca_pem_;
  const absl::Duration recheck_;
  absl::Mutex mu_;
  absl::Time checked_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::string listing_ ABSL_GUARDED_BY(mu_);  // names, sizes and times of the files last read
  std::set<std::string> revoked_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fedattn::crypto
