#include "fedattn/coordinator/coordinator_options.h"

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/rpc/tls_config.h"
#include "fedattn/config/yaml_reader.h"

namespace fedattn::coordinator {

absl::Status CoordinatorOptions::Validate() const {
  if (listen.find(':') == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("listen address '", listen, "' needs host:port"));
  }
  if (online_window_ms < heartbeat_interval_ms) {
    return absl::InvalidArgumentError("online_window_seconds must be at least heartbeat_interval_seconds");
  }
  return absl::OkStatus();
}

absl::StatusOr<CoordinatorOptions> LoadCoordinatorOptions(const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(config::YamlDocument doc, config::YamlDocument::Load(path));
  CoordinatorOptions options;
  {
    config::MapReader root = doc.Root();
    config::MapReader coordinator = root.Map("coordinator");
    coordinator.Required("name", &options.name);
    coordinator.Optional("listen", &options.listen);
    coordinator.OptionalPath("state_dir", &options.state_dir);
    double heartbeat_s = options.heartbeat_interval_ms / 1000.0;
    double online_s = options.online_window_ms / 1000.0;
    coordinator.Optional("heartbeat_interval_seconds", &heartbeat_s, 0.1, 3600);
    coordinator.Optional("online_window_seconds", &online_s, 0.1, 86400);
    options.heartbeat_interval_ms = static_cast<int64_t>(heartbeat_s * 1000);
    options.online_window_ms = static_cast<int64_t>(online_s * 1000);
    if (!root.Has("coordinator") || !coordinator.Has("state_dir")) options.state_dir = doc.directory() / "state";
    config::MapReader tls = root.Map("tls");
    rpc::ReadTlsSection(tls, &options.tls);
    const absl::Status valid = options.Validate();
    if (!valid.ok()) coordinator.Error("", valid.message());
  }
  RETURN_IF_ERROR(doc.Finish());
  return options;
}

}  // namespace fedattn::coordinator
