// Says in plain words why a party cannot talk to the coordinator. gRPC reports a failed
// handshake as a bare UNAVAILABLE; this probe repeats the TCP connect and the TLS handshake with
// OpenSSL directly and returns OpenSSL's reason (connection refused, unknown CA, expired
// certificate, certificate not naming the expected server, our certificate refused by it).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "fedattn/rpc/tls.h"

namespace fedattn::rpc {

// OK when TCP and mutual TLS to `address` succeed and the server names itself `server_name`.
// UNAVAILABLE for network problems, UNAUTHENTICATED for TLS problems; the message says which
// side refused and why. Blocks up to about 2 × `timeout`.
[[nodiscard]] absl::Status ProbeConnection(const TlsIdentity& identity, const std::string& address,
                                           const std::string& server_name,
                                           absl::Duration timeout = absl::Seconds(3));

}  // namespace fedattn::rpc
