// A running coordinator: state opened from the state directory, the site and admin services
// served over mutual TLS.
#pragma once

#include <grpcpp/server.h>

#include <memory>

#include "absl/status/statusor.h"
#include "fedattn/audit/audit_log.h"
#include "fedattn/common/clock.h"
#include "fedattn/coordinator/admin_service.h"
#include "fedattn/coordinator/coordinator_options.h"
#include "fedattn/coordinator/dashboard_server.h"
#include "fedattn/coordinator/job_manager.h"
#include "fedattn/coordinator/job_store.h"
#include "fedattn/coordinator/site_registry.h"
#include "fedattn/coordinator/site_service.h"
#include "fedattn/coordinator/task_board.h"

namespace fedattn::coordinator {

class CoordinatorServer {
 public:
  // Opens the state, loads the TLS identity (which must be a coordinator certificate named
  // options.name) and starts serving. `clock` must outlive the server.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(CoordinatorOptions options,
                                                                                const Clock* clock);
  ~CoordinatorServer();

  // The bound port (useful when listening on port 0).
  int port() const { return port_; }
  // The dashboard's bound port; 0 when the dashboard is off.
  int dashboard_port() const { return dashboard_ ? dashboard_->port() : 0; }
  // Blocks until Shutdown() is called from another thread.
  void Wait();
  // Stops accepting calls, ends long polls, waits up to `grace` for calls in flight. Idempotent.
  void Shutdown(absl::Duration grace = absl::Seconds(2));

 private:
  CoordinatorServer() = default;

  CoordinatorOptions options_;
  std::unique_ptr<SiteRegistry> registry_;
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<audit::AuditLog> audit_;  // outlives the jobs and services that write to it
  TaskBoard tasks_;
  std::unique_ptr<JobManager> jobs_;
  std::unique_ptr<SiteServiceImpl> site_service_;
  std::unique_ptr<AdminServiceImpl> admin_service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  TransferCounters transfer_counters_;
  std::unique_ptr<DashboardServer> dashboard_;
};

}  // namespace fedattn::coordinator
