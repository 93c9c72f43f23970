// gRPC core logs through its own gpr_log to stderr; FedAttn binaries route it into spdlog at
// debug level instead, because every failure gRPC logs is also returned to us and explained in
// plain words (see connection_probe.h).
#pragma once

namespace fedattn::rpc {

// Call once, before the first channel or server is made.
void RouteGrpcLogsToSpdlog();

}  // namespace fedattn::rpc
