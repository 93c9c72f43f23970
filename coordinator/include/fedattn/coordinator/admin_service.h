// The gRPC service the operator CLI calls. Admin certificates only.
#pragma once

#include "fedattn/common/clock.h"
#include "fedattn/coordinator/coordinator_options.h"
#include "fedattn/coordinator/job_manager.h"
#include "fedattn/coordinator/job_store.h"
#include "fedattn/coordinator/site_registry.h"
#include "fedattn/v1/fedattn.grpc.pb.h"

namespace fedattn::coordinator {

class AdminServiceImpl final : public v1::AdminService::Service {
 public:
  // Borrows everything; all must outlive the service.
  AdminServiceImpl(const CoordinatorOptions* options, SiteRegistry* registry, JobStore* store, JobManager* jobs,
                   const Clock* clock, absl::Time started)
      : options_(options), registry_(registry), store_(store), jobs_(jobs), clock_(clock), started_(started) {}

  grpc::Status GetStatus(grpc::ServerContext* context, const v1::GetStatusRequest* request,
                         v1::GetStatusResponse* response) override;
  grpc::Status ListSites(grpc::ServerContext* context, const v1::ListSitesRequest* request,
                         v1::ListSitesResponse* response) override;
  grpc::Status SubmitJob(grpc::ServerContext* context, const v1::SubmitJobRequest* request,
                         v1::SubmitJobResponse* response) override;
  grpc::Status GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request, v1::JobInfo* response) override;
  grpc::Status ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override;
  grpc::Status CancelJob(grpc::ServerContext* context, const v1::CancelJobRequest* request,
                         v1::JobInfo* response) override;
  grpc::Status ExportModel(grpc::ServerContext* context, const v1::ExportModelRequest* request,
                           grpc::ServerWriter<v1::TensorChunk>* writer) override;
  grpc::Status ExportAudit(grpc::ServerContext* context, const v1::ExportAuditRequest* request,
                           grpc::ServerWriter<v1::AuditChunk>* writer) override;

 private:
  // Appends an admin action to the audit log with a checkpoint; a failure is logged.
  void LogAdminAction(absl::string_view type, nlohmann::json data);
  absl::Status FillSites(google::protobuf::RepeatedPtrField<v1::SiteInfo>* sites, uint32_t* online);

  const CoordinatorOptions* options_;
  absl::Status FillJob(const std::string& job_id, bool with_rounds, v1::JobInfo* info);
  SiteRegistry* registry_;
  JobStore* store_;
  JobManager* jobs_;
  const Clock* clock_;
  absl::Time started_;
};

}  // namespace fedattn::coordinator
