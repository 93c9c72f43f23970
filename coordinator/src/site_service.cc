#include "fedattn/coordinator/site_service.h"

#include <functional>
#include <map>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "fedattn/common/files.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/config.h"
#include "fedattn/coordinator/caller_check.h"
#include "fedattn/rpc/peer.h"
#include "fedattn/rpc/status.h"
#include "fedattn/rpc/tensor_stream.h"
#include "fedattn/common/logging.h"

namespace fedattn::coordinator {
namespace {

// The caller's certificate must be a site's and not revoked (checked on every call).
absl::StatusOr<crypto::CertificateInfo> RequireSite(const grpc::ServerContext& context, const rpc::TlsFiles& tls) {
  return RequireCaller(context, crypto::PartyRole::kSite, "site service", tls);
}

// RequireSite, and the site it claims to be must be that one.
absl::StatusOr<crypto::CertificateInfo> AuthorizeSite(const grpc::ServerContext& context,
                                                      const std::string& claimed_name, const rpc::TlsFiles& tls) {
  ASSIGN_OR_RETURN(crypto::CertificateInfo peer, RequireSite(context, tls));
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

// Ends model and update streams whose round is over. gRPC sets no server-side deadline, so a
// site that stops reading its download or stops sending its upload would otherwise hold a server
// thread (and an upload spool) for ever. Checked a few times a second. Process-wide and never
// destroyed: a call may still be running while static objects are torn down.
class CallWatchdog {
 public:
  static CallWatchdog& Get() {
    static CallWatchdog* const watchdog = new CallWatchdog();
    return *watchdog;
  }

  // Cancels `context` once `alive()` returns false, until the guard goes away (the call's end).
  class Guard {
   public:
    Guard(CallWatchdog* watchdog, uint64_t id) : watchdog_(watchdog), id_(id) {}
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard() { watchdog_->Remove(id_); }

   private:
    CallWatchdog* watchdog_;
    uint64_t id_;
  };
  [[nodiscard]] std::unique_ptr<Guard> Watch(grpc::ServerContext* context, std::function<bool()> alive) {
    absl::MutexLock lock(&mu_);
    const uint64_t id = next_id_++;
    calls_[id] = Call{context, std::move(alive), false};
    return std::make_unique<Guard>(this, id);
  }

 private:
  struct Call {
    grpc::ServerContext* context;
    std::function<bool()> alive;
    bool cancelled;
  };
  CallWatchdog() {
    std::thread([this] { Loop(); }).detach();
  }
  void Remove(uint64_t id) {
    absl::MutexLock lock(&mu_);
    calls_.erase(id);
  }
  void Loop() {
    while (true) {
      absl::SleepFor(absl::Milliseconds(250));
      absl::MutexLock lock(&mu_);
      for (auto& [id, call] : calls_) {
        if (call.cancelled || call.alive()) continue;
        call.cancelled = true;
        call.context->TryCancel();
      }
    }
  }

  absl::Mutex mu_;
  std::map<uint64_t, Call> calls_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

grpc::Status SiteServiceImpl::Register(grpc::ServerContext* context, const v1::RegisterRequest* request,
                                       v1::RegisterResponse* response) {
  auto peer = AuthorizeSite(*context, request->site_name(), options_->tls);
  if (!peer.ok()) return Refuse("Register", peer.status());
  auto previous = registry_->Get(peer->name);
  auto pem = rpc::PeerCertificatePem(*context);
  if (!pem.ok()) return Refuse("Register", pem.status());
  Registration registration{peer->name, peer->fingerprint, request->agent_version(),
                            std::max<uint32_t>(1, request->world_size()), *pem};
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
  auto peer = AuthorizeSite(*context, request->site_name(), options_->tls);
  if (!peer.ok()) return Refuse("Heartbeat", peer.status());
  const absl::Time now = clock_->Now();
  const absl::Status status = registry_->Heartbeat(peer->name, request->state(), now);
  if (!status.ok()) return Refuse("Heartbeat", status);
  // An idle site that still owes an answer to a round lost its task on the way.
  if (request->state() == "idle") jobs_->SiteIdle(peer->name);
  response->set_server_time_unix_ms(absl::ToUnixMillis(now));
  return grpc::Status::OK;
}

grpc::Status SiteServiceImpl::PullTask(grpc::ServerContext* context, const v1::PullTaskRequest* request,
                                       v1::PullTaskResponse* response) {
  auto peer = AuthorizeSite(*context, request->site_name(), options_->tls);
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
  auto peer = RequireSite(*context, options_->tls);
  if (!peer.ok()) return Refuse("DownloadModel", peer.status());
  auto runner = jobs_->Running(request->round().job_id());
  if (!runner.ok()) return Refuse("DownloadModel", runner.status());
  uint64_t version = 0;
  auto views = (*runner)->ModelForDownload(request->round(), peer->name, &version);
  if (!views.ok()) return Refuse("DownloadModel", views.status());
  const std::shared_ptr<JobRunner> job = *runner;
  auto watch = CallWatchdog::Get().Watch(context, [job, version, ref = request->round(), site = peer->name] {
    return job->ModelVersion() == version && job->CheckRound(ref, site).ok();
  });
  auto chunker = rpc::TensorChunker::Create(std::move(*views), rpc::kMaxChunkBytes, request->resume_from_tensor(),
                                            request->resume_offset());
  if (!chunker.ok()) return Refuse("DownloadModel", chunker.status());
  v1::TensorChunk chunk;
  while (true) {
    {
      // The model changes only between rounds; a stream that outlives its round stops here.
      if ((*runner)->ModelVersion() != version) {
        return Refuse("DownloadModel", absl::FailedPreconditionError(absl::StrCat(
                                           "round ", request->round().round(), " of job '",
                                           request->round().job_id(), "' is over")));
      }
      if (!chunker->Next(&chunk)) break;
    }
    const size_t chunk_bytes = chunk.ByteSizeLong();
    if (context->IsCancelled() || !writer->Write(chunk)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "download cancelled by the site");
    }
    if (counters_ != nullptr) counters_->bytes_sent.fetch_add(chunk_bytes, std::memory_order_relaxed);
  }
  return grpc::Status::OK;
}

grpc::Status SiteServiceImpl::UploadUpdate(grpc::ServerContext* context,
                                           grpc::ServerReader<v1::UploadUpdateRequest>* reader,
                                           v1::UploadUpdateResponse* response) {
  auto peer = RequireSite(*context, options_->tls);
  if (!peer.ok()) return Refuse("UploadUpdate", peer.status());
  v1::UploadUpdateRequest message;
  // Counts every message read, whether or not the upload is then accepted.
  auto read = [this, reader](v1::UploadUpdateRequest* next) {
    if (!reader->Read(next)) return false;
    if (counters_ != nullptr) counters_->bytes_received.fetch_add(next->ByteSizeLong(), std::memory_order_relaxed);
    return true;
  };
  if (!read(&message)) return Refuse("UploadUpdate", absl::InvalidArgumentError("empty upload stream"));
  const v1::RoundRef ref = message.round();
  const v1::TrainReport report = message.report();
  auto runner = jobs_->Running(ref.job_id());
  if (!runner.ok()) return Refuse("UploadUpdate", runner.status());
  absl::Status status = (*runner)->CheckRound(ref, peer->name);
  if (!status.ok()) return Refuse("UploadUpdate", status);
  const std::shared_ptr<JobRunner> job = *runner;
  // Reset once the stream is read: accepting the upload may end the round, and that must not
  // cancel the call that is about to succeed.
  auto watch = CallWatchdog::Get().Watch(
      context, [job, ref, site = peer->name] { return job->CheckRound(ref, site).ok(); });
  // Round 0 is the initial model: whole tensors, collected in memory, checked against the spec.
  if (ref.round() == 0) {
    rpc::CollectingSink sink;
    rpc::TensorStreamReader stream(&sink, (*runner)->InitUploadLimits());
    do {
      if (message.has_chunk()) status = stream.Add(message.chunk());
      if (!status.ok()) return Refuse("UploadUpdate", status);
    } while (read(&message));
    status = stream.Finish();
    watch.reset();
    if (status.ok()) status = (*runner)->FinishInitUpload(ref, peer->name, sink.Take());
    if (!status.ok()) return Refuse("UploadUpdate", status);
    response->set_tensors_received(stream.tensors_completed());
    response->set_bytes_received(stream.total_bytes());
    return grpc::Status::OK;
  }
  auto spool = (*runner)->BeginUpload(ref, peer->name);
  if (!spool.ok()) return Refuse("UploadUpdate", spool.status());
  rpc::TensorStreamReader stream(spool->get(), rpc::StreamLimits{});
  do {
    if (message.has_chunk()) status = stream.Add(message.chunk());
    if (!status.ok()) return Refuse("UploadUpdate", status);
  } while (read(&message));
  status = stream.Finish();
  watch.reset();
  if (status.ok() && !(*spool)->complete()) status = absl::InvalidArgumentError("the upload carried no tensor");
  if (!status.ok()) return Refuse("UploadUpdate", status);
  response->set_tensors_received(stream.tensors_completed());
  response->set_bytes_received(stream.total_bytes());
  status = (*runner)->FinishUpload(ref, peer->name, report, std::move(*spool));
  if (!status.ok()) return Refuse("UploadUpdate", status);
  return grpc::Status::OK;
}

grpc::Status SiteServiceImpl::ReportTask(grpc::ServerContext* context, const v1::ReportTaskRequest* request,
                                         v1::ReportTaskResponse* response) {
  auto peer = AuthorizeSite(*context, request->site_name(), options_->tls);
  if (!peer.ok()) return Refuse("ReportTask", peer.status());
  auto runner = jobs_->Running(request->round().job_id());
  if (!runner.ok()) return Refuse("ReportTask", runner.status());
  const absl::Status status = (*runner)->ReportTask(*request, peer->name);
  if (!status.ok()) return Refuse("ReportTask", status);
  return grpc::Status::OK;
}

grpc::Status SiteServiceImpl::SecAggStep(grpc::ServerContext* context, const v1::SecAggStepRequest* request,
                                         v1::SecAggStepResponse* response) {
  auto peer = AuthorizeSite(*context, request->site_name(), options_->tls);
  if (!peer.ok()) return Refuse("SecAggStep", peer.status());
  auto runner = jobs_->Running(request->round().job_id());
  if (!runner.ok()) return Refuse("SecAggStep", runner.status());
  auto result = (*runner)->SecAggStep(*request, peer->name);
  if (!result.ok()) return Refuse("SecAggStep", result.status());
  *response = std::move(*result);
  return grpc::Status::OK;
}

grpc::Status SiteServiceImpl::RecordLedgerEntry(grpc::ServerContext* context,
                                                const v1::RecordLedgerEntryRequest* request,
                                                v1::RecordLedgerEntryResponse* response) {
  auto peer = AuthorizeSite(*context, request->site_name(), options_->tls);
  if (!peer.ok()) return Refuse("RecordLedgerEntry", peer.status());
  audit::AuditLog* log = jobs_->audit();
  if (log == nullptr) {
    return Refuse("RecordLedgerEntry", absl::UnavailableError("this coordinator keeps no audit log"));
  }
  auto pem = rpc::PeerCertificatePem(*context);
  if (!pem.ok()) return Refuse("RecordLedgerEntry", pem.status());
  // The entry must be signed by the key of the certificate the site connected with.
  auto receipt = log->RecordLedgerEntry(peer->name, *pem, request->entry_json(), request->signature());
  if (!receipt.ok()) {
    return Refuse("RecordLedgerEntry", absl::Status(receipt.status().code(),
                                                    absl::StrCat("ledger entry of site '", peer->name,
                                                                 "': ", receipt.status().message())));
  }
  response->set_receipt_json(receipt->json);
  response->set_receipt_signature(receipt->signature);
  response->set_log_seq(static_cast<uint64_t>(receipt->log_seq));
  response->set_coordinator_certificate_pem(log->certificate_pem());
  return grpc::Status::OK;
}

}  // namespace fedattn::coordinator
