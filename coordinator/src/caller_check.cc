#include "fedattn/coordinator/caller_check.h"

#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "fedattn/common/files.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/crypto/crl.h"
#include "fedattn/rpc/peer.h"

namespace fedattn::coordinator {
namespace {

// The revocation lists of the coordinator's tls.crl_dir (null without one), one per directory
// for the process (tests run several coordinators in one process).
crypto::RevocationList* RevocationsOf(const rpc::TlsFiles& tls) {
  if (tls.crl_dir.empty()) return nullptr;
  static absl::Mutex mu(absl::kConstInit);
  static auto* const lists = new std::map<std::string, std::unique_ptr<crypto::RevocationList>>();
  absl::MutexLock lock(&mu);
  std::unique_ptr<crypto::RevocationList>& list = (*lists)[tls.crl_dir.string()];
  if (list == nullptr) list = std::make_unique<crypto::RevocationList>(tls.crl_dir, ReadFile(tls.ca_cert).value_or(""));
  return list.get();
}

}  // namespace

absl::StatusOr<crypto::CertificateInfo> RequireCaller(const grpc::ServerContext& context, crypto::PartyRole role,
                                                      absl::string_view service, const rpc::TlsFiles& tls) {
  ASSIGN_OR_RETURN(crypto::CertificateInfo peer, rpc::RequirePeerRole(context, role, service));
  if (crypto::RevocationList* revocations = RevocationsOf(tls); revocations != nullptr) {
    ASSIGN_OR_RETURN(std::string pem, rpc::PeerCertificatePem(context));
    if (revocations->IsRevoked(pem)) {
      return absl::PermissionDeniedError(absl::StrCat("the certificate of ", crypto::RoleName(role), " '", peer.name,
                                                      "' has been revoked (", peer.fingerprint.substr(0, 16),
                                                      "…, on the consortium CA's revocation list)"));
    }
  }
  return peer;
}

}  // namespace fedattn::coordinator
