// Configuration of a coordinator process (its kit's coordinator.yaml; docs/operations.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fedattn/rpc/tls.h"

namespace fedattn::coordinator {

// The operator dashboard and /metrics (docs/operations.md, "Dashboard"). Off unless enabled. On
// a loopback address it may serve plain HTTP without a credential (only this machine can reach
// it); any other address needs HTTPS (tls_cert, tls_key) and a bearer token (token_file), or the
// coordinator refuses to start.
struct DashboardOptions {
  bool enabled = false;
  std::string listen = "127.0.0.1:50080";  // host:port; port 0 picks a free one (logged)
  std::filesystem::path tls_cert;          // PEM certificate (chain); with tls_key: HTTPS
  std::filesystem::path tls_key;           // PEM private key
  std::filesystem::path token_file;        // admin bearer token; created (0600, random) if missing
  int64_t refresh_seconds = 5;             // pages of an unfinished job reload this often

  // True when `listen`'s host is 127.0.0.0/8, ::1 or localhost.
  bool Loopback() const;
  [[nodiscard]] absl::Status Validate() const;
};

struct CoordinatorOptions {
  std::string name = "coordinator";         // must match the CN of the TLS certificate
  std::string listen = "0.0.0.0:50051";     // host:port to bind; port 0 picks a free one
  std::filesystem::path state_dir = "state";  // SQLite state (WAL) and checkpoints
  int64_t heartbeat_interval_ms = 5000;     // what agents are told to use
  int64_t online_window_ms = 15000;         // a site is online if heard from within this window
  int64_t max_pull_wait_ms = 30000;         // longest a PullTask long poll is held
  rpc::TlsFiles tls;
  DashboardOptions dashboard;

  [[nodiscard]] absl::Status Validate() const;
};

// Loads and validates a coordinator YAML; errors name the file, line and key.
[[nodiscard]] absl::StatusOr<CoordinatorOptions> LoadCoordinatorOptions(const std::filesystem::path& path);

}  // namespace fedattn::coordinator
