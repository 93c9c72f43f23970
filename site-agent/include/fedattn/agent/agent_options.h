// Configuration of a site agent (its kit's site.yaml; docs/operations.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fedattn/agent/site_policy.h"
#include "fedattn/rpc/tls.h"
#include "fedattn/rpc/tls_config.h"

namespace fedattn::agent {

struct AgentOptions {
  std::string site_name;                      // must match the CN of the site certificate
  std::filesystem::path state_dir = "state";  // the site's own ledger and downloads
  rpc::CoordinatorEndpoint coordinator;
  rpc::TlsFiles tls;
  int64_t initial_backoff_ms = 500;   // first wait after a failed connection
  int64_t max_backoff_ms = 30000;     // waits double up to this
  int64_t pull_wait_ms = 10000;       // long-poll length of PullTask
  SitePolicy policy;                  // optional `policy:` section (defaults in site_policy.h)
  SiteData data;                      // optional `data:` section; path empty when absent

  [[nodiscard]] absl::Status Validate() const;
};

// Loads and validates site.yaml; errors name the file, line and key.
[[nodiscard]] absl::StatusOr<AgentOptions> LoadAgentOptions(const std::filesystem::path& path);

}  // namespace fedattn::agent
