// Configuration of a coordinator process (its kit's coordinator.yaml; docs/operations.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fedattn/rpc/tls.h"

namespace fedattn::coordinator {

struct CoordinatorOptions {
  std::string name = "coordinator";         // must match the CN of the TLS certificate
  std::string listen = "0.0.0.0:50051";     // host:port to bind; port 0 picks a free one
  std::filesystem::path state_dir = "state";  // SQLite state (WAL) and checkpoints
  int64_t heartbeat_interval_ms = 5000;     // what agents are told to use
  int64_t online_window_ms = 15000;         // a site is online if heard from within this window
  int64_t max_pull_wait_ms = 30000;         // longest a PullTask long poll is held
  rpc::TlsFiles tls;

  [[nodiscard]] absl::Status Validate() const;
};

// Loads and validates a coordinator YAML; errors name the file, line and key.
[[nodiscard]] absl::StatusOr<CoordinatorOptions> LoadCoordinatorOptions(const std::filesystem::path& path);

}  // namespace fedattn::coordinator
