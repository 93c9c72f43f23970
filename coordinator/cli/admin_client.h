// The operator's connection to the coordinator's admin service, from an admin kit (admin.yaml).
#pragma once

#include <filesystem>
#include <functional>
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

// The admin calls behind `fedattn job` and `fedattn model`: AdminClient makes them over gRPC,
// tests fake them. Errors are the coordinator's (NOT_FOUND for an unknown job, ...) or the
// connection's, explained.
class JobAdmin {
 public:
  virtual ~JobAdmin() = default;
  // Submits a self-contained job YAML; returns the new job's id.
  [[nodiscard]] virtual absl::StatusOr<std::string> SubmitJob(const std::string& job_yaml) = 0;
  [[nodiscard]] virtual absl::StatusOr<v1::JobInfo> GetJob(const std::string& job_id) = 0;
  [[nodiscard]] virtual absl::StatusOr<v1::ListJobsResponse> ListJobs() = 0;
  [[nodiscard]] virtual absl::StatusOr<v1::JobInfo> CancelJob(const std::string& job_id) = 0;
  // Streams the global model committed at `round` (0: the latest) into `consume`, chunk by
  // chunk; stops at the first error, the consumer's or the stream's.
  [[nodiscard]] virtual absl::Status ExportModel(
      const std::string& job_id, uint64_t round,
      const std::function<absl::Status(const v1::TensorChunk&)>& consume) = 0;
};

class AdminClient : public JobAdmin {
 public:
  // Loads the TLS identity and prepares the channel (connecting lazily).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<AdminClient>> Create(const AdminOptions& options);

  // Calls with a deadline; a connection failure is explained (ProbeConnection).
  [[nodiscard]] absl::StatusOr<v1::GetStatusResponse> GetStatus();

  absl::StatusOr<std::string> SubmitJob(const std::string& job_yaml) override;
  absl::StatusOr<v1::JobInfo> GetJob(const std::string& job_id) override;
  absl::StatusOr<v1::ListJobsResponse> ListJobs() override;
  absl::StatusOr<v1::JobInfo> CancelJob(const std::string& job_id) override;
  // Deadline one hour (a model may be large); a consumer error cancels the call.
  absl::Status ExportModel(const std::string& job_id, uint64_t round,
                           const std::function<absl::Status(const v1::TensorChunk&)>& consume) override;
  // The coordinator's audit log (docs/formats/audit-log.md); the export is itself logged.
  [[nodiscard]] absl::StatusOr<std::string> ExportAudit();
  // The federation's CA certificate, from the kit (what audit records are checked against).
  const std::string& ca_pem() const { return identity_.ca_pem; }

 private:
  AdminClient(AdminOptions options, rpc::TlsIdentity identity);
  absl::Status Explain(const grpc::Status& status);

  AdminOptions options_;
  rpc::TlsIdentity identity_;
  std::unique_ptr<v1::AdminService::Stub> stub_;
};

}  // namespace fedattn::cli
