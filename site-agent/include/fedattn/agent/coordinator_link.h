// The agent's channel to the coordinator, as an interface so the task loop can run against a
// fake in tests and against gRPC over mutual TLS in production.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "fedattn/rpc/tls.h"
#include "fedattn/rpc/tls_config.h"
#include "fedattn/v1/fedattn.grpc.pb.h"

namespace fedattn::agent {

class CoordinatorLink {
 public:
  virtual ~CoordinatorLink() = default;
  virtual absl::StatusOr<v1::RegisterResponse> Register(const v1::RegisterRequest& request) = 0;
  virtual absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request) = 0;
  // Blocks up to request.wait_ms() plus network time.
  virtual absl::StatusOr<v1::PullTaskResponse> PullTask(const v1::PullTaskRequest& request) = 0;
  // Replaces a bare transport failure by its cause in plain words (see rpc::ProbeConnection).
  virtual absl::Status Explain(const absl::Status& failure) = 0;
};

// gRPC implementation. Thread-compatible: one call at a time per method is expected.
class GrpcCoordinatorLink : public CoordinatorLink {
 public:
  GrpcCoordinatorLink(const rpc::TlsIdentity* identity, rpc::CoordinatorEndpoint endpoint);

  absl::StatusOr<v1::RegisterResponse> Register(const v1::RegisterRequest& request) override;
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request) override;
  absl::StatusOr<v1::PullTaskResponse> PullTask(const v1::PullTaskRequest& request) override;
  absl::Status Explain(const absl::Status& failure) override;

 private:
  const rpc::TlsIdentity* identity_;
  rpc::CoordinatorEndpoint endpoint_;
  std::unique_ptr<v1::SiteService::Stub> stub_;
};

}  // namespace fedattn::agent
