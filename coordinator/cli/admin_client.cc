#include "admin_client.h"

#include <grpcpp/client_context.h>
#include <grpcpp/support/sync_stream.h>

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/config/yaml_reader.h"
#include "fedattn/rpc/connection_probe.h"
#include "fedattn/rpc/status.h"

namespace fedattn::cli {
namespace {

void SetDeadline(grpc::ClientContext* context, std::chrono::seconds seconds) {
  context->set_deadline(std::chrono::system_clock::now() + seconds);
}

}  // namespace

absl::StatusOr<AdminOptions> LoadAdminOptions(const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(config::YamlDocument doc, config::YamlDocument::Load(path));
  AdminOptions options;
  {
    config::MapReader root = doc.Root();
    config::MapReader admin = root.Map("admin");
    admin.Required("name", &options.name);
    config::MapReader coordinator = root.Map("coordinator");
    rpc::ReadCoordinatorEndpoint(coordinator, &options.coordinator);
    config::MapReader tls = root.Map("tls");
    rpc::ReadTlsSection(tls, &options.tls);
  }
  RETURN_IF_ERROR(doc.Finish());
  return options;
}

AdminClient::AdminClient(AdminOptions options, rpc::TlsIdentity identity)
    : options_(std::move(options)), identity_(std::move(identity)) {
  stub_ = v1::AdminService::NewStub(rpc::MakeChannel(identity_, options_.coordinator.address, options_.coordinator.name));
}

absl::StatusOr<std::unique_ptr<AdminClient>> AdminClient::Create(const AdminOptions& options) {
  ASSIGN_OR_RETURN(rpc::TlsIdentity identity, rpc::LoadTlsIdentity(options.tls));
  return std::unique_ptr<AdminClient>(new AdminClient(options, std::move(identity)));
}

absl::Status AdminClient::Explain(const grpc::Status& status) {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    const absl::Status probe = rpc::ProbeConnection(identity_, options_.coordinator.address, options_.coordinator.name);
    if (!probe.ok()) return probe;
  }
  return rpc::FromGrpcStatus(status);
}

absl::StatusOr<v1::GetStatusResponse> AdminClient::GetStatus() {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::GetStatusResponse response;
  const grpc::Status status = stub_->GetStatus(&context, v1::GetStatusRequest(), &response);
  if (!status.ok()) return Explain(status);
  return response;
}

absl::StatusOr<std::string> AdminClient::SubmitJob(const std::string& job_yaml) {
  grpc::ClientContext context;
  SetDeadline(&context, std::chrono::seconds(30));
  v1::SubmitJobRequest request;
  request.set_job_config(job_yaml);
  v1::SubmitJobResponse response;
  const grpc::Status status = stub_->SubmitJob(&context, request, &response);
  if (!status.ok()) return Explain(status);
  return response.job_id();
}

absl::StatusOr<v1::JobInfo> AdminClient::GetJob(const std::string& job_id) {
  grpc::ClientContext context;
  SetDeadline(&context, std::chrono::seconds(10));
  v1::GetJobRequest request;
  request.set_job_id(job_id);
  v1::JobInfo response;
  const grpc::Status status = stub_->GetJob(&context, request, &response);
  if (!status.ok()) return Explain(status);
  return response;
}

absl::StatusOr<v1::ListJobsResponse> AdminClient::ListJobs() {
  grpc::ClientContext context;
  SetDeadline(&context, std::chrono::seconds(10));
  v1::ListJobsResponse response;
  const grpc::Status status = stub_->ListJobs(&context, v1::ListJobsRequest(), &response);
  if (!status.ok()) return Explain(status);
  return response;
}

absl::StatusOr<v1::JobInfo> AdminClient::CancelJob(const std::string& job_id) {
  grpc::ClientContext context;
  SetDeadline(&context, std::chrono::seconds(10));
  v1::CancelJobRequest request;
  request.set_job_id(job_id);
  v1::JobInfo response;
  const grpc::Status status = stub_->CancelJob(&context, request, &response);
  if (!status.ok()) return Explain(status);
  return response;
}

absl::Status AdminClient::ExportModel(const std::string& job_id, uint64_t round,
                                      const std::function<absl::Status(const v1::TensorChunk&)>& consume) {
  grpc::ClientContext context;
  SetDeadline(&context, std::chrono::hours(1));
  v1::ExportModelRequest request;
  request.set_job_id(job_id);
  request.set_round(round);
  std::unique_ptr<grpc::ClientReader<v1::TensorChunk>> reader = stub_->ExportModel(&context, request);
  v1::TensorChunk chunk;
  absl::Status consumed;
  while (consumed.ok() && reader->Read(&chunk)) consumed = consume(chunk);
  if (!consumed.ok()) context.TryCancel();
  const grpc::Status status = reader->Finish();
  RETURN_IF_ERROR(consumed);
  if (!status.ok()) return Explain(status);
  return absl::OkStatus();
}

absl::StatusOr<std::string> AdminClient::ExportAudit() {
  grpc::ClientContext context;
  SetDeadline(&context, std::chrono::minutes(10));
  std::unique_ptr<grpc::ClientReader<v1::AuditChunk>> reader = stub_->ExportAudit(&context, v1::ExportAuditRequest());
  std::string text;
  v1::AuditChunk chunk;
  while (reader->Read(&chunk)) text += chunk.data();
  const grpc::Status status = reader->Finish();
  if (!status.ok()) return Explain(status);
  return text;
}

}  // namespace fedattn::cli
