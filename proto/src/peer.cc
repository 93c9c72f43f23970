#include "fedattn/rpc/peer.h"

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"

namespace fedattn::rpc {

absl::StatusOr<crypto::CertificateInfo> PeerIdentity(const grpc::ServerContext& context) {
  const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) {
    return absl::UnauthenticatedError("the call carries no verified client certificate");
  }
  const std::vector<grpc::string_ref> pems = auth->FindPropertyValues("x509_pem_cert");
  if (pems.empty()) return absl::UnauthenticatedError("the call carries no client certificate");
  return crypto::InspectCertificatePem(absl::string_view(pems.front().data(), pems.front().size()));
}

absl::StatusOr<std::string> PeerCertificatePem(const grpc::ServerContext& context) {
  const std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) {
    return absl::UnauthenticatedError("the call carries no verified client certificate");
  }
  const std::vector<grpc::string_ref> pems = auth->FindPropertyValues("x509_pem_cert");
  if (pems.empty()) return absl::UnauthenticatedError("the call carries no client certificate");
  return std::string(pems.front().data(), pems.front().size());
}

absl::StatusOr<crypto::CertificateInfo> RequirePeerRole(const grpc::ServerContext& context,
                                                        crypto::PartyRole role, absl::string_view service) {
  ASSIGN_OR_RETURN(crypto::CertificateInfo peer, PeerIdentity(context));
  if (peer.role != role) {
    return absl::PermissionDeniedError(absl::StrCat(crypto::RoleName(peer.role), " certificate '", peer.name,
                                                    "' cannot call the ", service, " (needs a ",
                                                    crypto::RoleName(role), " certificate)"));
  }
  return peer;
}

}  // namespace fedattn::rpc
