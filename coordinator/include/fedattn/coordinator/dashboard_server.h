// The coordinator's web dashboard and /metrics over HTTP(S) (cpp-httplib), on its own threads
// beside the gRPC services. Read-only: it serves pages rendered from the job store and the site
// registry (dashboard_pages.h) and the Prometheus metrics (prometheus_metrics.h):
//
//   GET /             jobs and sites          GET /metrics   Prometheus text format
//   GET /jobs/<id>    one job                 GET /healthz   "ok"
//
// With DashboardOptions::token_file set every request must carry the token, as
// "Authorization: Bearer <token>" (scrapers, curl) or as the password of HTTP basic auth (a
// browser's prompt; any user name); the comparison takes constant time. Responses carry a strict
// Content-Security-Policy (no script, no outside resource) and are never cached.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "fedattn/common/clock.h"
#include "fedattn/coordinator/coordinator_options.h"
#include "fedattn/coordinator/dashboard_pages.h"
#include "fedattn/coordinator/job_store.h"
#include "fedattn/coordinator/prometheus_metrics.h"
#include "fedattn/coordinator/site_registry.h"

namespace httplib {
class Server;
}

namespace fedattn::coordinator {

// What the dashboard reads. Borrowed: everything must outlive the DashboardServer.
struct DashboardSources {
  const CoordinatorOptions* options = nullptr;
  JobStore* store = nullptr;
  SiteRegistry* registry = nullptr;
  const TransferCounters* counters = nullptr;
  const Clock* clock = nullptr;
  // The privacy caps the coordinator knows for a job's sites (none when unset).
  std::function<EpsilonCaps(const std::string& job_id)> caps;
};

// Reads the token in `path`, or creates the file with a fresh random token (256 bits, hex) and
// mode 0600 when it does not exist. FAILED_PRECONDITION if the file is readable or writable by
// group or others, or holds fewer than 16 characters.
[[nodiscard]] absl::StatusOr<std::string> LoadOrCreateDashboardToken(const std::filesystem::path& path);

// True if `authorization` (an Authorization header value) carries `token` as a bearer token or
// as a basic-auth password. Constant time in the token's contents (compares SHA-256 digests
// with CRYPTO_memcmp).
bool DashboardAuthorized(const std::string& authorization, const std::string& token);

class DashboardServer {
 public:
  // Binds options->dashboard.listen (HTTPS when a certificate is configured) and starts serving.
  // REQUIRES: options->dashboard.enabled. Errors: INVALID_ARGUMENT for invalid options (e.g. a
  // non-loopback address without TLS and token), FAILED_PRECONDITION for an unusable token file or
  // certificate, UNAVAILABLE if the address cannot be bound.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<DashboardServer>> Start(DashboardSources sources);
  ~DashboardServer();  // Stop()s

  int port() const { return port_; }
  // "http(s)://host:port/" as bound.
  const std::string& url() const { return url_; }
  // Stops accepting requests and joins the server thread. Idempotent.
  void Stop();

 private:
  DashboardServer() = default;
  void Route();

  DashboardSources sources_;
  std::string token_;  // empty: no credential required (loopback without token_file)
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  std::atomic<bool> listen_returned_{false};
  int port_ = 0;
  std::string url_;
};

}  // namespace fedattn::coordinator
