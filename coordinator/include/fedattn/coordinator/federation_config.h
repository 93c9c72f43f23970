// The consortium description that `fedattn provision` turns into a CA and startup kits
// (configs/federation.yaml; format in docs/operations.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fedattn::coordinator {

struct FederationConfig {
  std::string name;            // the consortium; becomes O= in every certificate
  int64_t validity_days = 365;  // lifetime of every certificate issued
  struct Coordinator {
    std::string name = "coordinator";
    std::string listen = "0.0.0.0:50051";   // what the coordinator binds
    std::string address = "127.0.0.1:50051";  // what agents and admins dial
    std::vector<std::string> hosts;  // extra DNS names / IP addresses for its certificate
  } coordinator;
  std::vector<std::string> sites;   // site party names
  std::vector<std::string> admins;  // admin party names

  // Names valid and unique across all parties.
  [[nodiscard]] absl::Status Validate() const;
};

// Loads and validates; errors name the file, line and key.
[[nodiscard]] absl::StatusOr<FederationConfig> LoadFederationConfig(const std::filesystem::path& path);

}  // namespace fedattn::coordinator
