#include "admin_client.h"

#include <grpcpp/client_context.h>

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/config/yaml_reader.h"
#include "fedattn/rpc/connection_probe.h"
#include "fedattn/rpc/status.h"

namespace fedattn::cli {

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

}  // namespace fedattn::cli
