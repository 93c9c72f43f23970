#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "admin_client.h"
#include "commands.h"

namespace fedattn::cli {
namespace {

std::string Ago(int64_t now_ms, int64_t then_ms) {
  const int64_t seconds = std::max<int64_t>(0, (now_ms - then_ms) / 1000);
  if (seconds < 120) return absl::StrCat(seconds, "s ago");
  if (seconds < 7200) return absl::StrCat(seconds / 60, "m ago");
  if (seconds < 172800) return absl::StrCat(seconds / 3600, "h ago");
  return absl::StrCat(seconds / 86400, "d ago");
}

std::string Uptime(int64_t ms) {
  const int64_t s = ms / 1000;
  return absl::StrFormat("%dh%02dm%02ds", s / 3600, (s / 60) % 60, s % 60);
}

}  // namespace

std::string FormatStatusTable(const v1::GetStatusResponse& status) {
  std::string out = absl::StrFormat("coordinator '%s' (FedAttn %s), up %s: %d site(s) registered, %d online\n",
                                    status.coordinator_name(), status.version(),
                                    Uptime(status.now_unix_ms() - status.started_unix_ms()),
                                    status.sites_registered(), status.sites_online());
  if (status.sites_size() == 0) return out + "no site has registered yet\n";
  size_t width = 4;
  for (const v1::SiteInfo& site : status.sites()) width = std::max(width, site.name().size());
  out += "\n";
  auto line = [&](const std::string& a, const std::string& b, const std::string& c, const std::string& d,
                  const std::string& e, const std::string& f, const std::string& g) {
    std::string padded = a;
    padded.resize(std::max(width, a.size()), ' ');
    out += absl::StrFormat("%s  %-7s  %-10s  %-5s  %-10s  %-8s  %s\n", padded, b, c, d, e, f, g);
  };
  line("SITE", "ONLINE", "LAST SEEN", "RANKS", "STATE", "AGENT", "CERTIFICATE (SHA-256)");
  for (const v1::SiteInfo& site : status.sites()) {
    line(site.name(), site.online() ? "yes" : "no", Ago(status.now_unix_ms(), site.last_seen_unix_ms()),
         absl::StrCat(site.world_size()), site.state(), site.agent_version(), site.fingerprint().substr(0, 16));
  }
  return out;
}

nlohmann::json StatusToJson(const v1::GetStatusResponse& status) {
  nlohmann::json sites = nlohmann::json::array();
  for (const v1::SiteInfo& site : status.sites()) {
    sites.push_back({{"name", site.name()},
                     {"online", site.online()},
                     {"last_seen_unix_ms", site.last_seen_unix_ms()},
                     {"first_seen_unix_ms", site.first_seen_unix_ms()},
                     {"world_size", site.world_size()},
                     {"state", site.state()},
                     {"agent_version", site.agent_version()},
                     {"fingerprint", site.fingerprint()}});
  }
  return {{"coordinator", status.coordinator_name()},
          {"version", status.version()},
          {"started_unix_ms", status.started_unix_ms()},
          {"now_unix_ms", status.now_unix_ms()},
          {"sites_registered", status.sites_registered()},
          {"sites_online", status.sites_online()},
          {"sites", sites}};
}

void AddStatusCommand(CLI::App& app) {
  struct Flags {
    std::string config;
    std::string coordinator;
    bool json = false;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* command = app.add_subcommand("status", "Show the coordinator and its sites (admin certificate)");
  command->add_option("--config", flags->config, "The admin kit's admin.yaml")->required()->check(CLI::ExistingFile);
  command->add_option("--coordinator", flags->coordinator, "Dial this host:port instead of the kit's address");
  command->add_flag("--json", flags->json, "Print JSON instead of a table");
  command->callback([flags] {
    auto options = LoadAdminOptions(flags->config);
    ExitOnError(options.status(), "status");
    if (!flags->coordinator.empty()) options->coordinator.address = flags->coordinator;
    auto client = AdminClient::Create(*options);
    ExitOnError(client.status(), "status");
    auto status = (*client)->GetStatus();
    ExitOnError(status.status(), "status");
    if (flags->json) {
      std::cout << StatusToJson(*status).dump(2) << "\n";
    } else {
      std::cout << FormatStatusTable(*status);
    }
  });
}

}  // namespace fedattn::cli
