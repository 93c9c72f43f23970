#include "fedattn/coordinator/coordinator_options.h"

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/rpc/tls_config.h"
#include "fedattn/config/yaml_reader.h"

namespace fedattn::coordinator {

bool DashboardOptions::Loopback() const {
  const size_t colon = listen.rfind(':');
  std::string host = listen.substr(0, colon == std::string::npos ? listen.size() : colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

absl::Status DashboardOptions::Validate() const {
  if (!enabled) return absl::OkStatus();
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size()) {
    return absl::InvalidArgumentError(absl::StrCat("dashboard.listen '", listen, "' needs host:port"));
  }
  if (tls_cert.empty() != tls_key.empty()) {
    return absl::InvalidArgumentError("dashboard.tls needs both cert and key (or neither, for plain HTTP on loopback)");
  }
  if (!Loopback() && (tls_cert.empty() || token_file.empty())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dashboard.listen '", listen,
        "' is not a loopback address: serving the dashboard beyond this machine needs HTTPS (dashboard.tls.cert "
        "and dashboard.tls.key) and an admin token (dashboard.token_file); or listen on 127.0.0.1 and use an SSH "
        "tunnel"));
  }
  if (refresh_seconds < 1) return absl::InvalidArgumentError("dashboard.refresh_seconds must be >= 1");
  return absl::OkStatus();
}

absl::Status CoordinatorOptions::Validate() const {
  if (listen.find(':') == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("listen address '", listen, "' needs host:port"));
  }
  if (online_window_ms < heartbeat_interval_ms) {
    return absl::InvalidArgumentError("online_window_seconds must be at least heartbeat_interval_seconds");
  }
  return dashboard.Validate();
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
    if (root.Has("dashboard")) {
      config::MapReader dashboard = root.Map("dashboard");
      options.dashboard.enabled = true;  // a dashboard: section turns it on unless it says enabled: false
      dashboard.Optional("enabled", &options.dashboard.enabled);
      dashboard.Optional("listen", &options.dashboard.listen);
      dashboard.OptionalPath("token_file", &options.dashboard.token_file);
      dashboard.Optional("refresh_seconds", &options.dashboard.refresh_seconds, 1, 3600);
      if (dashboard.Has("tls")) {
        config::MapReader dashboard_tls = dashboard.Map("tls");
        dashboard_tls.RequiredPath("cert", &options.dashboard.tls_cert);
        dashboard_tls.RequiredPath("key", &options.dashboard.tls_key);
      }
      const absl::Status valid = options.dashboard.Validate();
      if (!valid.ok()) dashboard.Error("", valid.message());
    }
    const absl::Status valid = options.Validate();
    if (!valid.ok() && valid.message().rfind("dashboard", 0) != 0) coordinator.Error("", valid.message());
  }
  RETURN_IF_ERROR(doc.Finish());
  return options;
}

}  // namespace fedattn::coordinator
