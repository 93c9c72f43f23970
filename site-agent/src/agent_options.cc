#include "fedattn/agent/agent_options.h"

#include "fedattn/common/status_macros.h"
#include "fedattn/config/yaml_reader.h"

namespace fedattn::agent {

absl::Status AgentOptions::Validate() const {
  if (initial_backoff_ms > max_backoff_ms) {
    return absl::InvalidArgumentError("initial_backoff_seconds must not exceed max_backoff_seconds");
  }
  return absl::OkStatus();
}

absl::StatusOr<AgentOptions> LoadAgentOptions(const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(config::YamlDocument doc, config::YamlDocument::Load(path));
  AgentOptions options;
  options.state_dir = doc.directory() / "state";
  {
    config::MapReader root = doc.Root();
    config::MapReader site = root.Map("site");
    site.Required("name", &options.site_name);
    site.OptionalPath("state_dir", &options.state_dir);
    config::MapReader coordinator = root.Map("coordinator");
    rpc::ReadCoordinatorEndpoint(coordinator, &options.coordinator);
    config::MapReader tls = root.Map("tls");
    rpc::ReadTlsSection(tls, &options.tls);
    config::MapReader connection = root.Map("connection", /*required=*/false);
    double initial_s = options.initial_backoff_ms / 1000.0;
    double max_s = options.max_backoff_ms / 1000.0;
    double pull_s = options.pull_wait_ms / 1000.0;
    connection.Optional("initial_backoff_seconds", &initial_s, 0.05, 600);
    connection.Optional("max_backoff_seconds", &max_s, 0.05, 3600);
    connection.Optional("pull_wait_seconds", &pull_s, 0.1, 300);
    options.initial_backoff_ms = static_cast<int64_t>(initial_s * 1000);
    options.max_backoff_ms = static_cast<int64_t>(max_s * 1000);
    options.pull_wait_ms = static_cast<int64_t>(pull_s * 1000);
    const absl::Status valid = options.Validate();
    if (!valid.ok()) connection.Error("", valid.message());
    config::MapReader policy = root.Map("policy", /*required=*/false);
    ReadSitePolicy(policy, &options.policy);
    if (root.Has("data")) {
      config::MapReader data = root.Map("data");
      ReadSiteData(data, &options.data);
    }
  }
  RETURN_IF_ERROR(doc.Finish());
  return options;
}

}  // namespace fedattn::agent
