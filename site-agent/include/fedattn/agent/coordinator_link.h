// The agent's channel to the coordinator, as an interface so the task loop can run against a
// fake in tests and against gRPC over mutual TLS in production.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "fedattn/rpc/tensor_stream.h"
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

  // Round calls (a fake link may leave them unimplemented).
  // The round's global model, every tensor hash-checked; a broken stream resumes where it stopped.
  virtual absl::StatusOr<std::vector<TensorBuffer>> DownloadModel(const v1::RoundRef& round);
  // Streams `tensors` (with `report` in the first message) in chunks of at most 4 MiB.
  virtual absl::StatusOr<v1::UploadUpdateResponse> UploadUpdate(const v1::RoundRef& round,
                                                                const v1::TrainReport& report,
                                                                std::vector<rpc::TensorView> tensors);
  virtual absl::Status ReportTask(const v1::ReportTaskRequest& request);
  // Blocks up to request.wait_ms() plus network time.
  virtual absl::StatusOr<v1::SecAggStepResponse> SecAggStep(const v1::SecAggStepRequest& request);
  // Logs a signed ledger entry at the coordinator; returns its receipt.
  virtual absl::StatusOr<v1::RecordLedgerEntryResponse> RecordLedgerEntry(const v1::RecordLedgerEntryRequest& request);
};

// gRPC implementation. Thread-compatible: one call at a time per method is expected.
class GrpcCoordinatorLink : public CoordinatorLink {
 public:
  GrpcCoordinatorLink(const rpc::TlsIdentity* identity, rpc::CoordinatorEndpoint endpoint);

  absl::StatusOr<v1::RegisterResponse> Register(const v1::RegisterRequest& request) override;
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request) override;
  absl::StatusOr<v1::PullTaskResponse> PullTask(const v1::PullTaskRequest& request) override;
  absl::Status Explain(const absl::Status& failure) override;
  absl::StatusOr<std::vector<TensorBuffer>> DownloadModel(const v1::RoundRef& round) override;
  absl::StatusOr<v1::UploadUpdateResponse> UploadUpdate(const v1::RoundRef& round, const v1::TrainReport& report,
                                                        std::vector<rpc::TensorView> tensors) override;
  absl::Status ReportTask(const v1::ReportTaskRequest& request) override;
  absl::StatusOr<v1::SecAggStepResponse> SecAggStep(const v1::SecAggStepRequest& request) override;
  absl::StatusOr<v1::RecordLedgerEntryResponse> RecordLedgerEntry(const v1::RecordLedgerEntryRequest& request) override;

 private:
  const rpc::TlsIdentity* identity_;
  rpc::CoordinatorEndpoint endpoint_;
  std::unique_ptr<v1::SiteService::Stub> stub_;
};

}  // namespace fedattn::agent
