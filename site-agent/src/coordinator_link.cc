#include "fedattn/agent/coordinator_link.h"

#include <grpcpp/client_context.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"
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

// A stream of a whole model over loopback or a LAN takes seconds; this bounds a stuck one.
constexpr auto kTransferTimeout = std::chrono::minutes(30);
constexpr int kDownloadAttempts = 5;

absl::Status Unimplemented(absl::string_view call) {
  return absl::UnimplementedError(absl::StrCat("this coordinator link does not support ", call));
}

bool Retryable(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable || status.code() == absl::StatusCode::kDeadlineExceeded ||
         status.code() == absl::StatusCode::kAborted;
}

}  // namespace

absl::StatusOr<std::vector<TensorBuffer>> CoordinatorLink::DownloadModel(const v1::RoundRef&) {
  return Unimplemented("DownloadModel");
}
absl::StatusOr<v1::UploadUpdateResponse> CoordinatorLink::UploadUpdate(const v1::RoundRef&, const v1::TrainReport&,
                                                                       std::vector<rpc::TensorView>) {
  return Unimplemented("UploadUpdate");
}
absl::Status CoordinatorLink::ReportTask(const v1::ReportTaskRequest&) { return Unimplemented("ReportTask"); }
absl::StatusOr<v1::SecAggStepResponse> CoordinatorLink::SecAggStep(const v1::SecAggStepRequest&) {
  return Unimplemented("SecAggStep");
}
absl::StatusOr<v1::RecordLedgerEntryResponse> CoordinatorLink::RecordLedgerEntry(const v1::RecordLedgerEntryRequest&) {
  return Unimplemented("RecordLedgerEntry");
}

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

absl::StatusOr<std::vector<TensorBuffer>> GrpcCoordinatorLink::DownloadModel(const v1::RoundRef& round) {
  rpc::CollectingSink sink;
  rpc::TensorStreamReader reader(&sink, rpc::StreamLimits{});
  absl::Status last;
  for (int attempt = 1; attempt <= kDownloadAttempts; ++attempt) {
    v1::DownloadModelRequest request;
    *request.mutable_round() = round;
    request.set_resume_from_tensor(reader.resume_tensor());
    request.set_resume_offset(reader.resume_offset());
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kTransferTimeout);
    std::unique_ptr<grpc::ClientReader<v1::TensorChunk>> stream = stub_->DownloadModel(&context, request);
    v1::TensorChunk chunk;
    absl::Status status;
    while (status.ok() && stream->Read(&chunk)) status = reader.Add(chunk);
    if (!status.ok()) {
      context.TryCancel();
      stream->Finish();
      return status;  // corrupt data: resuming cannot fix it
    }
    last = rpc::FromGrpcStatus(stream->Finish());
    if (last.ok()) {
      RETURN_IF_ERROR(reader.Finish());
      return sink.Take();
    }
    if (!Retryable(last)) return last;
  }
  return absl::Status(last.code(), absl::StrCat("model download failed ", kDownloadAttempts, " times: ", last.message()));
}

absl::StatusOr<v1::UploadUpdateResponse> GrpcCoordinatorLink::UploadUpdate(const v1::RoundRef& round,
                                                                            const v1::TrainReport& report,
                                                                            std::vector<rpc::TensorView> tensors) {
  ASSIGN_OR_RETURN(rpc::TensorChunker chunker, rpc::TensorChunker::Create(std::move(tensors)));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kTransferTimeout);
  v1::UploadUpdateResponse response;
  std::unique_ptr<grpc::ClientWriter<v1::UploadUpdateRequest>> stream = stub_->UploadUpdate(&context, &response);
  v1::UploadUpdateRequest message;
  *message.mutable_round() = round;
  *message.mutable_report() = report;
  bool more = chunker.Next(message.mutable_chunk());
  while (true) {
    if (!stream->Write(message)) break;  // the server ended the call; Finish says why
    if (!more) break;
    message.Clear();
    more = chunker.Next(message.mutable_chunk());
    if (!more) break;
  }
  stream->WritesDone();
  RETURN_IF_ERROR(rpc::FromGrpcStatus(stream->Finish()));
  return response;
}

absl::Status GrpcCoordinatorLink::ReportTask(const v1::ReportTaskRequest& request) {
  return Invoke<v1::ReportTaskResponse>(kCallTimeout, [&](grpc::ClientContext* c, v1::ReportTaskResponse* r) {
           return stub_->ReportTask(c, request, r);
         }).status();
}

absl::StatusOr<v1::SecAggStepResponse> GrpcCoordinatorLink::SecAggStep(const v1::SecAggStepRequest& request) {
  const auto timeout = std::chrono::milliseconds(request.wait_ms()) + kCallTimeout;
  return Invoke<v1::SecAggStepResponse>(std::chrono::duration_cast<std::chrono::milliseconds>(timeout),
                                        [&](grpc::ClientContext* c, v1::SecAggStepResponse* r) {
                                          return stub_->SecAggStep(c, request, r);
                                        });
}

absl::StatusOr<v1::RecordLedgerEntryResponse> GrpcCoordinatorLink::RecordLedgerEntry(
    const v1::RecordLedgerEntryRequest& request) {
  return Invoke<v1::RecordLedgerEntryResponse>(kCallTimeout,
                                               [&](grpc::ClientContext* c, v1::RecordLedgerEntryResponse* r) {
                                                 return stub_->RecordLedgerEntry(c, request, r);
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
