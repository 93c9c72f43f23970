#include "fedattn/agent/coordinator_link.h"

#include <grpcpp/client_context.h>

#include <chrono>

#include "fedattn/rpc/connection_probe.h"
#include "fedattn/rpc/status.h"

namespace fedattn::agent {
namespace {

constexpr auto kCallTimeout = std::chrono::seconds(10);

template <typename Response, typename Call>
absl::StatusOr<Response> Invoke(std::chrono::milliseconds timeout, Call call) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  Response response;
  const grpc::Status status = call(&context, &response);
  if (!status.ok()) return rpc::FromGrpcStatus(status);
  return response;
}

}  // namespace

GrpcCoordinatorLink::GrpcCoordinatorLink(const rpc::TlsIdentity* identity, rpc::CoordinatorEndpoint endpoint)
    : identity_(identity), endpoint_(std::move(endpoint)) {
  stub_ = v1::SiteService::NewStub(rpc::MakeChannel(*identity_, endpoint_.address, endpoint_.name));
}

absl::StatusOr<v1::RegisterResponse> GrpcCoordinatorLink::Register(const v1::RegisterRequest& request) {
  return Invoke<v1::RegisterResponse>(kCallTimeout, [&](grpc::ClientContext* c, v1::RegisterResponse* r) {
    return stub_->Register(c, request, r);
  });
}

absl::StatusOr<v1::HeartbeatResponse> GrpcCoordinatorLink::Heartbeat(const v1::HeartbeatRequest& request) {
  return Invoke<v1::HeartbeatResponse>(kCallTimeout, [&](grpc::ClientContext* c, v1::HeartbeatResponse* r) {
    return stub_->Heartbeat(c, request, r);
  });
}

absl::StatusOr<v1::PullTaskResponse> GrpcCoordinatorLink::PullTask(const v1::PullTaskRequest& request) {
  const auto timeout = std::chrono::milliseconds(request.wait_ms()) + kCallTimeout;
  return Invoke<v1::PullTaskResponse>(std::chrono::duration_cast<std::chrono::milliseconds>(timeout),
                                      [&](grpc::ClientContext* c, v1::PullTaskResponse* r) {
                                        return stub_->PullTask(c, request, r);
                                      });
}

absl::Status GrpcCoordinatorLink::Explain(const absl::Status& failure) {
  if (failure.code() != absl::StatusCode::kUnavailable && failure.code() != absl::StatusCode::kDeadlineExceeded) {
    return failure;
  }
  const absl::Status probe = rpc::ProbeConnection(*identity_, endpoint_.address, endpoint_.name);
  return probe.ok() ? failure : probe;
}

}  // namespace fedattn::agent
