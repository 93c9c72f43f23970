// The gRPC service the operator CLI calls. Admin certificates only.
#pragma once

#include "fedattn/common/clock.h"
#include "fedattn/coordinator/coordinator_options.h"
#include "fedattn/coordinator/site_registry.h"
#include "fedattn/v1/fedattn.grpc.pb.h"

namespace fedattn::coordinator {

class AdminServiceImpl final : public v1::AdminService::Service {
 public:
  // Borrows everything; all must outlive the service.
  AdminServiceImpl(const CoordinatorOptions* options, SiteRegistry* registry, const Clock* clock,
                   absl::Time started)
      : options_(options), registry_(registry), clock_(clock), started_(started) {}

  grpc::Status GetStatus(grpc::ServerContext* context, const v1::GetStatusRequest* request,
                         v1::GetStatusResponse* response) override;
  grpc::Status ListSites(grpc::ServerContext* context, const v1::ListSitesRequest* request,
                         v1::ListSitesResponse* response) override;

 private:
  absl::Status FillSites(google::protobuf::RepeatedPtrField<v1::SiteInfo>* sites, uint32_t* online);

  const CoordinatorOptions* options_;
  SiteRegistry* registry_;
  const Clock* clock_;
  absl::Time started_;
};

}  // namespace fedattn::coordinator
