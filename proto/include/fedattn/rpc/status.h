// absl::Status <-> grpc::Status at the transport seam (same canonical codes on both sides).
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace fedattn::rpc {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace fedattn::rpc
