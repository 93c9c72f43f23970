// The operator's connection to the coordinator's admin service, from an admin kit (admin.yaml).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "fedattn/rpc/tls.h"
#include "fedattn/rpc/tls_config.h"
#include "fedattn/v1/fedattn.grpc.pb.h"

namespace fedattn::cli {

struct AdminOptions {
  std::string name;
  rpc::CoordinatorEndpoint coordinator;
  rpc::TlsFiles tls;
};

// Loads admin.yaml; errors name the file, line and key.
[[nodiscard]] absl::StatusOr<AdminOptions> LoadAdminOptions(const std::filesystem::path& path);

class AdminClient {
 public:
  // Loads the TLS identity and prepares the channel (connecting lazily).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<AdminClient>> Create(const AdminOptions& options);

  // Calls with a deadline; a connection failure is explained (ProbeConnection).
  [[nodiscard]] absl::StatusOr<v1::GetStatusResponse> GetStatus();

 private:
  AdminClient(AdminOptions options, rpc::TlsIdentity identity);
  absl::Status Explain(const grpc::Status& status);

  AdminOptions options_;
  rpc::TlsIdentity identity_;
  std::unique_ptr<v1::AdminService::Stub> stub_;
};

}  // namespace fedattn::cli
