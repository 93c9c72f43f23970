#include "fedattn/coordinator/admin_service.h"

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/coordinator/caller_check.h"
#include "fedattn/rpc/tensor_stream.h"
#include "fedattn/tensor/safetensors.h"
#include "fedattn/config.h"
#include "fedattn/rpc/peer.h"
#include "fedattn/rpc/status.h"
#include "fedattn/common/logging.h"

namespace fedattn::coordinator {
namespace {

// An admin's certificate, not revoked (checked on every call: an operator's CLI may keep its
// connection).
absl::StatusOr<crypto::CertificateInfo> AdminPeer(const grpc::ServerContext& context, absl::string_view method,
                                                  const rpc::TlsFiles& tls) {
  auto peer = RequireCaller(context, crypto::PartyRole::kAdmin, "admin service", tls);
  if (!peer.ok()) spdlog::warn("refused {}: {}", method, peer.status().message());
  return peer;
}

absl::Status AuthorizeAdmin(const grpc::ServerContext& context, absl::string_view method,
                            const rpc::TlsFiles& tls) {
  return AdminPeer(context, method, tls).status();
}

int64_t Millis(const std::optional<absl::Time>& time) { return time.has_value() ? absl::ToUnixMillis(*time) : 0; }

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
  if (absl::Status status = AuthorizeAdmin(*context, "GetStatus", options_->tls); !status.ok()) {
    return rpc::ToGrpcStatus(status);
  }
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
  if (absl::Status status = AuthorizeAdmin(*context, "ListSites", options_->tls); !status.ok()) {
    return rpc::ToGrpcStatus(status);
  }
  uint32_t online = 0;
  return rpc::ToGrpcStatus(FillSites(response->mutable_sites(), &online));
}

absl::Status AdminServiceImpl::FillJob(const std::string& job_id, bool with_rounds, v1::JobInfo* info) {
  ASSIGN_OR_RETURN(JobRecord job, store_->GetJob(job_id));
  info->set_job_id(job.id);
  info->set_name(job.name);
  info->set_state(job.state);
  info->set_rounds(static_cast<uint64_t>(job.rounds));
  info->set_committed_rounds(static_cast<uint64_t>(job.committed_rounds));
  info->set_submitted_unix_ms(absl::ToUnixMillis(job.submitted));
  info->set_finished_unix_ms(Millis(job.finished));
  info->set_error(job.error);
  info->set_submitted_by(job.submitted_by);
  ASSIGN_OR_RETURN(std::vector<RoundRecord> rounds, store_->Rounds(job_id));
  for (size_t i = with_rounds ? 0 : (rounds.empty() ? 0 : rounds.size() - 1); i < rounds.size(); ++i) {
    const RoundRecord& record = rounds[i];
    v1::RoundInfo* round = info->add_round_history();
    round->set_round(static_cast<uint64_t>(record.round));
    round->set_state(record.state);
    round->set_started_unix_ms(absl::ToUnixMillis(record.started));
    round->set_finished_unix_ms(Millis(record.finished));
    for (const auto& [name, value] : record.train_metrics) (*round->mutable_train_metrics())[name] = value;
    for (const auto& [name, value] : record.validation_metrics) (*round->mutable_validation_metrics())[name] = value;
    round->set_error(record.error);
    round->set_model_sha256(record.model_sha256);
    for (const RoundSiteRecord& site : record.sites) {
      v1::RoundSiteInfo* out = round->add_sites();
      out->set_site(site.site);
      out->set_status(site.status);
      out->set_reason(site.reason);
      out->set_num_examples(site.num_examples);
      out->set_epsilon_spent(site.epsilon_spent);
      out->set_epsilon_cumulative(site.epsilon_cumulative);
    }
  }
  if (with_rounds) info->set_job_config(job.config);
  return absl::OkStatus();
}

grpc::Status AdminServiceImpl::SubmitJob(grpc::ServerContext* context, const v1::SubmitJobRequest* request,
                                         v1::SubmitJobResponse* response) {
  auto peer = AdminPeer(*context, "SubmitJob", options_->tls);
  if (!peer.ok()) return rpc::ToGrpcStatus(peer.status());
  auto id = jobs_->Submit(request->job_config(), peer->name);
  if (!id.ok()) {
    spdlog::warn("refused job from '{}': {}", peer->name, id.status().message());
    return rpc::ToGrpcStatus(id.status());
  }
  response->set_job_id(*id);  // JobManager::Submit logged job_submitted before the job could run
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                                      v1::JobInfo* response) {
  if (absl::Status status = AuthorizeAdmin(*context, "GetJob", options_->tls); !status.ok()) {
    return rpc::ToGrpcStatus(status);
  }
  return rpc::ToGrpcStatus(FillJob(request->job_id(), true, response));
}

grpc::Status AdminServiceImpl::ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                                        v1::ListJobsResponse* response) {
  if (absl::Status status = AuthorizeAdmin(*context, "ListJobs", options_->tls); !status.ok()) {
    return rpc::ToGrpcStatus(status);
  }
  auto jobs = store_->ListJobs();
  if (!jobs.ok()) return rpc::ToGrpcStatus(jobs.status());
  for (const JobRecord& job : *jobs) {
    if (absl::Status status = FillJob(job.id, false, response->add_jobs()); !status.ok()) {
      return rpc::ToGrpcStatus(status);
    }
  }
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::CancelJob(grpc::ServerContext* context, const v1::CancelJobRequest* request,
                                         v1::JobInfo* response) {
  auto peer = AdminPeer(*context, "CancelJob", options_->tls);
  if (!peer.ok()) return rpc::ToGrpcStatus(peer.status());
  if (absl::Status status = jobs_->Cancel(request->job_id()); !status.ok()) return rpc::ToGrpcStatus(status);
  spdlog::info("job '{}' cancel requested by '{}'", request->job_id(), peer->name);
  LogAdminAction("job_cancelled", {{"job", request->job_id()}, {"by", peer->name}});
  return rpc::ToGrpcStatus(FillJob(request->job_id(), false, response));
}

grpc::Status AdminServiceImpl::ExportModel(grpc::ServerContext* context, const v1::ExportModelRequest* request,
                                           grpc::ServerWriter<v1::TensorChunk>* writer) {
  auto peer = AdminPeer(*context, "ExportModel", options_->tls);
  if (!peer.ok()) return rpc::ToGrpcStatus(peer.status());
  auto job = store_->GetJob(request->job_id());
  if (!job.ok()) return rpc::ToGrpcStatus(job.status());
  const int64_t round = request->has_round() ? static_cast<int64_t>(request->round()) : job->committed_rounds;
  if (round > job->committed_rounds) {
    return rpc::ToGrpcStatus(absl::NotFoundError(absl::StrCat("job '", job->id, "' has committed ",
                                                              job->committed_rounds, " round(s), not ", round)));
  }
  const std::filesystem::path path =
      options_->state_dir / "jobs" / job->id / absl::StrCat("round-", round, ".safetensors");
  if (!std::filesystem::exists(path)) {
    return rpc::ToGrpcStatus(absl::NotFoundError(absl::StrCat(
        "job '", job->id, "' kept no checkpoint of round ", round, " (checkpoint.every in the job config)")));
  }
  auto file = LoadSafetensors(path);
  if (!file.ok()) return rpc::ToGrpcStatus(file.status());
  auto chunker = rpc::TensorChunker::Create(file->tensors);
  if (!chunker.ok()) return rpc::ToGrpcStatus(chunker.status());
  spdlog::info("model of job '{}' round {} exported by '{}'", job->id, round, peer->name);
  LogAdminAction("model_exported", {{"job", job->id}, {"round", round}, {"by", peer->name}});
  v1::TensorChunk chunk;
  while (chunker->Next(&chunk)) {
    if (!writer->Write(chunk)) return grpc::Status(grpc::StatusCode::CANCELLED, "export cancelled");
  }
  return grpc::Status::OK;
}

void AdminServiceImpl::LogAdminAction(absl::string_view type, nlohmann::json data) {
  audit::AuditLog* log = jobs_->audit();
  if (log == nullptr) return;
  // An admin action is covered by a signed checkpoint at once: it is what an insider would deny.
  absl::Status status = log->Append(type, std::move(data)).status();
  if (status.ok()) status = log->Checkpoint();
  if (!status.ok()) spdlog::error("cannot write '{}' to the audit log: {}", type, status.message());
}

grpc::Status AdminServiceImpl::ExportAudit(grpc::ServerContext* context, const v1::ExportAuditRequest* request,
                                           grpc::ServerWriter<v1::AuditChunk>* writer) {
  auto peer = AdminPeer(*context, "ExportAudit", options_->tls);
  if (!peer.ok()) return rpc::ToGrpcStatus(peer.status());
  audit::AuditLog* log = jobs_->audit();
  if (log == nullptr) return rpc::ToGrpcStatus(absl::UnavailableError("this coordinator keeps no audit log"));
  auto text = log->Export(peer->name);
  if (!text.ok()) return rpc::ToGrpcStatus(text.status());
  spdlog::info("audit log exported by '{}' ({} bytes)", peer->name, text->size());
  constexpr size_t kChunk = 1 << 20;
  v1::AuditChunk chunk;
  for (size_t offset = 0; offset < text->size(); offset += kChunk) {
    chunk.set_data(text->substr(offset, kChunk));
    if (!writer->Write(chunk)) return grpc::Status(grpc::StatusCode::CANCELLED, "export cancelled");
  }
  return grpc::Status::OK;
}

}  // namespace fedattn::coordinator
