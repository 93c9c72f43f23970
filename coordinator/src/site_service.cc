#include "fedattn/coordinator/site_service.h"

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/config.h"
#include "fedattn/rpc/peer.h"
#include "fedattn/rpc/status.h"
#include "fedattn/common/logging.h"

namespace fedattn::coordinator {
namespace {

// The caller's certificate must be a site's, and the site it claims to be must be that one.
absl::StatusOr<crypto::CertificateInfo> AuthorizeSite(const grpc::ServerContext& context,
                                                      const std::string& claimed_name) {
  ASSIGN_OR_RETURN(crypto::CertificateInfo peer,
                   rpc::RequirePeerRole(context, crypto::PartyRole::kSite, "site service"));
  if (claimed_name != peer.name) {
    return absl::PermissionDeniedError(
        absl::StrCat("the certificate of site '", peer.name, "' cannot act as site '", claimed_name, "'"));
  }
  return peer;
}

grpc::Status Refuse(absl::string_view method, const absl::Status& status) {
  spdlog::warn("refused {}: {}", method, status.message());
  return rpc::ToGrpcStatus(status);
}

}  // namespace

grpc::Status SiteServiceImpl::Register(grpc::ServerContext* context, const v1::RegisterRequest* request,
                                       v1::RegisterResponse* response) {
  auto peer = AuthorizeSite(*context, request->site_name());
  if (!peer.ok()) return Refuse("Register", peer.status());
  auto previous = registry_->Get(peer->name);
  Registration registration{peer->name, peer->fingerprint, request->agent_version(),
                            std::max<uint32_t>(1, request->world_size())};
  auto is_new = registry_->Register(registration, clock_->Now());
  if (!is_new.ok()) return rpc::ToGrpcStatus(is_new.status());
  if (*is_new) {
    spdlog::info("site '{}' registered (certificate {}, agent {}, {} rank(s))", peer->name,
                 peer->fingerprint.substr(0, 16), request->agent_version(), registration.world_size);
  } else if (previous.ok() && previous->fingerprint != peer->fingerprint) {
    spdlog::warn("site '{}' registered with a new certificate {} (was {})", peer->name,
                 peer->fingerprint.substr(0, 16), previous->fingerprint.substr(0, 16));
  } else {
    spdlog::info("site '{}' registered again", peer->name);
  }
  response->set_coordinator_name(options_->name);
  response->set_coordinator_version(FEDATTN_VERSION);
  response->set_heartbeat_interval_ms(static_cast<uint32_t>(options_->heartbeat_interval_ms));
  response->set_first_registration(*is_new);
  return grpc::Status::OK;
}

grpc::Status SiteServiceImpl::Heartbeat(grpc::ServerContext* context, const v1::HeartbeatRequest* request,
                                        v1::HeartbeatResponse* response) {
  auto peer = AuthorizeSite(*context, request->site_name());
  if (!peer.ok()) return Refuse("Heartbeat", peer.status());
  const absl::Time now = clock_->Now();
  const absl::Status status = registry_->Heartbeat(peer->name, request->state(), now);
  if (!status.ok()) return Refuse("Heartbeat", status);
  response->set_server_time_unix_ms(absl::ToUnixMillis(now));
  return grpc::Status::OK;
}

grpc::Status SiteServiceImpl::PullTask(grpc::ServerContext* context, const v1::PullTaskRequest* request,
                                       v1::PullTaskResponse* response) {
  auto peer = AuthorizeSite(*context, request->site_name());
  if (!peer.ok()) return Refuse("PullTask", peer.status());
  const int64_t wait_ms = std::min<int64_t>(request->wait_ms(), options_->max_pull_wait_ms);
  absl::Time deadline = absl::Now() + absl::Milliseconds(wait_ms);
  // Never hold the call past the client's own deadline.
  deadline = std::min(deadline, absl::FromChrono(context->deadline()) - absl::Milliseconds(100));
  std::optional<v1::Task> task = tasks_->Wait(peer->name, deadline);
  if (task.has_value()) *response->mutable_task() = std::move(*task);
  return grpc::Status::OK;
}

grpc::Status SiteServiceImpl::DownloadModel(grpc::ServerContext* context, const v1::DownloadModelRequest* request,
                                            grpc::ServerWriter<v1::TensorChunk>* writer) {
  auto peer = rpc::RequirePeerRole(*context, crypto::PartyRole::kSite, "site service");
  if (!peer.ok()) return Refuse("DownloadModel", peer.status());
  // Rounds are driven by jobs; until a job exists there is no model to hand out.
  return Refuse("DownloadModel", absl::NotFoundError(absl::StrCat("job '", request->round().job_id(),
                                                                  "' is not known to this coordinator")));
}

grpc::Status SiteServiceImpl::UploadUpdate(grpc::ServerContext* context,
                                           grpc::ServerReader<v1::UploadUpdateRequest>* reader,
                                           v1::UploadUpdateResponse* response) {
  auto peer = rpc::RequirePeerRole(*context, crypto::PartyRole::kSite, "site service");
  if (!peer.ok()) return Refuse("UploadUpdate", peer.status());
  v1::UploadUpdateRequest first;
  if (!reader->Read(&first)) return Refuse("UploadUpdate", absl::InvalidArgumentError("empty upload stream"));
  return Refuse("UploadUpdate", absl::NotFoundError(absl::StrCat("job '", first.round().job_id(),
                                                                 "' is not known to this coordinator")));
}

}  // namespace fedattn::coordinator
