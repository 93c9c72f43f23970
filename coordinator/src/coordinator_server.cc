#include "fedattn/coordinator/coordinator_server.h"

#include <grpcpp/resource_quota.h>
#include <grpcpp/server_builder.h>

#include <cmath>

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/rpc/tls.h"
#include "fedattn/common/logging.h"

namespace fedattn::coordinator {
namespace {

constexpr size_t kGrpcMemoryQuotaBytes = 192u << 20;

}  // namespace

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(CoordinatorOptions options,
                                                                            const Clock* clock) {
  RETURN_IF_ERROR(options.Validate());
  ASSIGN_OR_RETURN(rpc::TlsIdentity identity, rpc::LoadTlsIdentity(options.tls));
  if (identity.info.role != crypto::PartyRole::kCoordinator || identity.info.name != options.name) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.tls.cert.string(), " is the certificate of ", crypto::RoleName(identity.info.role), " '",
        identity.info.name, "', not of coordinator '", options.name, "'"));
  }
  std::unique_ptr<CoordinatorServer> server(new CoordinatorServer());
  server->options_ = std::move(options);
  ASSIGN_OR_RETURN(server->registry_, SiteRegistry::Open(server->options_.state_dir));
  ASSIGN_OR_RETURN(server->store_, JobStore::Open(server->options_.state_dir));
  ASSIGN_OR_RETURN(crypto::PKeyPtr signing_key, crypto::PrivateKeyFromPem(identity.key_pem.value()));
  ASSIGN_OR_RETURN(server->audit_,
                   audit::AuditLog::Open(server->options_.state_dir / "audit" / "audit.jsonl",
                                         audit::AuditLog::Identity{server->options_.name, identity.cert_pem,
                                                                   std::move(signing_key), identity.ca_pem},
                                         clock));
  server->jobs_ = std::make_unique<JobManager>(JobContext{&server->options_, server->registry_.get(),
                                                          server->store_.get(), &server->tasks_, clock,
                                                          server->audit_.get()});
  server->site_service_ = std::make_unique<SiteServiceImpl>(&server->options_, server->registry_.get(),
                                                            &server->tasks_, server->jobs_.get(), clock,
                                                            &server->transfer_counters_);
  server->admin_service_ = std::make_unique<AdminServiceImpl>(&server->options_, server->registry_.get(),
                                                              server->store_.get(), server->jobs_.get(), clock,
                                                              clock->Now());

  grpc::ServerBuilder builder;
  builder.AddListeningPort(server->options_.listen, rpc::MakeServerCredentials(identity), &server->port_);
  builder.RegisterService(server->site_service_.get());
  builder.RegisterService(server->admin_service_.get());
  builder.SetMaxReceiveMessageSize(16 * 1024 * 1024);  // chunks are at most 4 MiB
  // Memory must not grow with the number of sites (docs/architecture.md, "Round overhead and
  // coordinator memory"): bound gRPC's buffers server-wide, and keep HTTP/2 flow-control windows
  // at their defaults instead of letting bandwidth probing grow them per stream.
  grpc::ResourceQuota quota("fedattn-coordinator");
  quota.Resize(kGrpcMemoryQuotaBytes);
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", server->options_.listen,
                                               " (address in use, or not an address of this machine?)"));
  }
  spdlog::info("coordinator '{}' listening on {} (port {}), state in {}", server->options_.name,
               server->options_.listen, server->port_, server->options_.state_dir.string());
  if (server->options_.dashboard.enabled) {
    // The caps the sites' signed ledger entries carry (audit log): drawn in the budget chart.
    auto caps = [audit = server->audit_.get(), registry = server->registry_.get()](const std::string& job) {
      EpsilonCaps caps;
      auto sites = registry->List();
      if (audit == nullptr || !sites.ok()) return caps;
      for (const SiteRecord& site : *sites) {
        auto budget = audit->BudgetOf(site.name, job);
        if (budget.ok() && budget->has_value() && std::isfinite((*budget)->cap)) caps[site.name] = (*budget)->cap;
      }
      return caps;
    };
    ASSIGN_OR_RETURN(server->dashboard_,
                     DashboardServer::Start({&server->options_, server->store_.get(), server->registry_.get(),
                                             &server->transfer_counters_, clock, std::move(caps)}));
  }
  RETURN_IF_ERROR(server->jobs_->ResumeJobs());
  return server;
}

CoordinatorServer::~CoordinatorServer() { Shutdown(); }

void CoordinatorServer::Wait() {
  if (server_) server_->Wait();
}

void CoordinatorServer::Shutdown(absl::Duration grace) {
  if (dashboard_) dashboard_->Stop();
  tasks_.Close();
  if (jobs_) jobs_->Shutdown();
  if (server_) server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
}

}  // namespace fedattn::coordinator
