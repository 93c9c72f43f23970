// Who may call the coordinator's services: the peer's certificate (checked by TLS against the
// consortium CA) must carry the service's role and must not be on the CA's revocation list.
#pragma once

#include <grpcpp/server_context.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fedattn/crypto/certificate.h"
#include "fedattn/rpc/tls.h"

namespace fedattn::coordinator {

// rpc::RequirePeerRole, then PERMISSION_DENIED if the certificate is revoked by a CRL in
// tls.crl_dir. TLS checks the CRL at the handshake only; this check, on every call, also refuses
// a connection made before the revocation. Without tls.crl_dir only the role is checked.
[[nodiscard]] absl::StatusOr<crypto::CertificateInfo> RequireCaller(const grpc::ServerContext& context,
                                                                    crypto::PartyRole role, absl::string_view service,
                                                                    const rpc::TlsFiles& tls);

}  // namespace fedattn::coordinator
