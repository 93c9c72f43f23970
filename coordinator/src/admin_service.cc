#include "fedattn/coordinator/admin_service.h"

#include "fedattn/common/status_macros.h"
#include "fedattn/config.h"
#include "fedattn/rpc/peer.h"
#include "fedattn/rpc/status.h"
#include "fedattn/common/logging.h"

namespace fedattn::coordinator {
namespace {

absl::Status AuthorizeAdmin(const grpc::ServerContext& context, absl::string_view method) {
  auto peer = rpc::RequirePeerRole(context, crypto::PartyRole::kAdmin, "admin service");
  if (!peer.ok()) {
    spdlog::warn("refused {}: {}", method, peer.status().message());
    return peer.status();
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status AdminServiceImpl::FillSites(google::protobuf::RepeatedPtrField<v1::SiteInfo>* sites, uint32_t* online) {
  ASSIGN_OR_RETURN(std::vector<SiteRecord> records, registry_->List());
  const absl::Time now = clock_->Now();
  *online = 0;
  for (const SiteRecord& record : records) {
    v1::SiteInfo* site = sites->Add();
    site->set_name(record.name);
    site->set_fingerprint(record.fingerprint);
    site->set_first_seen_unix_ms(absl::ToUnixMillis(record.first_seen));
    site->set_last_seen_unix_ms(absl::ToUnixMillis(record.last_seen));
    const bool is_online = now - record.last_seen <= absl::Milliseconds(options_->online_window_ms);
    site->set_online(is_online);
    site->set_agent_version(record.agent_version);
    site->set_world_size(record.world_size);
    site->set_state(record.state);
    if (is_online) ++*online;
  }
  return absl::OkStatus();
}

grpc::Status AdminServiceImpl::GetStatus(grpc::ServerContext* context, const v1::GetStatusRequest* request,
                                         v1::GetStatusResponse* response) {
  if (absl::Status status = AuthorizeAdmin(*context, "GetStatus"); !status.ok()) return rpc::ToGrpcStatus(status);
  uint32_t online = 0;
  if (absl::Status status = FillSites(response->mutable_sites(), &online); !status.ok()) {
    return rpc::ToGrpcStatus(status);
  }
  response->set_coordinator_name(options_->name);
  response->set_version(FEDATTN_VERSION);
  response->set_started_unix_ms(absl::ToUnixMillis(started_));
  response->set_now_unix_ms(absl::ToUnixMillis(clock_->Now()));
  response->set_sites_registered(static_cast<uint32_t>(response->sites_size()));
  response->set_sites_online(online);
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::ListSites(grpc::ServerContext* context, const v1::ListSitesRequest* request,
                                         v1::ListSitesResponse* response) {
  if (absl::Status status = AuthorizeAdmin(*context, "ListSites"); !status.ok()) return rpc::ToGrpcStatus(status);
  uint32_t online = 0;
  return rpc::ToGrpcStatus(FillSites(response->mutable_sites(), &online));
}

}  // namespace fedattn::coordinator
