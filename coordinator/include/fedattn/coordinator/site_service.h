// The gRPC service agents call. Every method first checks that the caller holds a site
// certificate and acts only as the site named in it.
#pragma once

#include "fedattn/common/clock.h"
#include "fedattn/coordinator/coordinator_options.h"
#include "fedattn/coordinator/job_manager.h"
#include "fedattn/coordinator/prometheus_metrics.h"
#include "fedattn/coordinator/site_registry.h"
#include "fedattn/coordinator/task_board.h"
#include "fedattn/v1/fedattn.grpc.pb.h"

namespace fedattn::coordinator {

class SiteServiceImpl final : public v1::SiteService::Service {
 public:
  // Borrows everything; all must outlive the service. `counters` (may be null) counts the bytes
  // of model and update streams, for /metrics.
  SiteServiceImpl(const CoordinatorOptions* options, SiteRegistry* registry, TaskBoard* tasks, JobManager* jobs,
                  const Clock* clock, TransferCounters* counters = nullptr)
      : options_(options), registry_(registry), tasks_(tasks), jobs_(jobs), clock_(clock), counters_(counters) {}

  grpc::Status Register(grpc::ServerContext* context, const v1::RegisterRequest* request,
                        v1::RegisterResponse* response) override;
  grpc::Status Heartbeat(grpc::ServerContext* context, const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse* response) override;
  grpc::Status PullTask(grpc::ServerContext* context, const v1::PullTaskRequest* request,
                        v1::PullTaskResponse* response) override;
  grpc::Status DownloadModel(grpc::ServerContext* context, const v1::DownloadModelRequest* request,
                             grpc::ServerWriter<v1::TensorChunk>* writer) override;
  grpc::Status UploadUpdate(grpc::ServerContext* context, grpc::ServerReader<v1::UploadUpdateRequest>* reader,
                            v1::UploadUpdateResponse* response) override;
  grpc::Status ReportTask(grpc::ServerContext* context, const v1::ReportTaskRequest* request,
                          v1::ReportTaskResponse* response) override;
  grpc::Status SecAggStep(grpc::ServerContext* context, const v1::SecAggStepRequest* request,
                          v1::SecAggStepResponse* response) override;

  grpc::Status RecordLedgerEntry(grpc::ServerContext* context, const v1::RecordLedgerEntryRequest* request,
                                 v1::RecordLedgerEntryResponse* response) override;

 private:
  const CoordinatorOptions* options_;
  SiteRegistry* registry_;
  TaskBoard* tasks_;
  JobManager* jobs_;
  const Clock* clock_;
  TransferCounters* counters_;
};

}  // namespace fedattn::coordinator
