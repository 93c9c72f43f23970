// Who is calling: the FedAttn identity in the TLS client certificate of a gRPC call.
#pragma once

#include <grpcpp/server_context.h>

#include "absl/strings/string_view.h"
#include "absl/status/statusor.h"
#include "fedattn/crypto/certificate.h"

namespace fedattn::rpc {

// The verified client certificate's identity. UNAUTHENTICATED if the call has none (gRPC has
// already checked the chain against the consortium CA during the handshake).
[[nodiscard]] absl::StatusOr<crypto::CertificateInfo> PeerIdentity(const grpc::ServerContext& context);

// The verified client certificate itself, PEM-encoded.
[[nodiscard]] absl::StatusOr<std::string> PeerCertificatePem(const grpc::ServerContext& context);
// PeerIdentity, then PERMISSION_DENIED unless its role is `role` ("site certificate 'x' cannot
// call the admin service").
[[nodiscard]] absl::StatusOr<crypto::CertificateInfo> RequirePeerRole(const grpc::ServerContext& context,
                                                                      crypto::PartyRole role,
                                                                      absl::string_view service);

}  // namespace fedattn::rpc
