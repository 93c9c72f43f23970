#include "fedattn/coordinator/federation_config.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/config/yaml_reader.h"
#include "fedattn/crypto/certificate.h"

namespace fedattn::coordinator {

absl::Status FederationConfig::Validate() const {
  if (name.empty()) return absl::InvalidArgumentError("federation name is empty");
  if (validity_days < 1) return absl::InvalidArgumentError("validity_days must be at least 1");
  std::set<std::string> seen;
  auto check = [&](const std::string& party, absl::string_view role) -> absl::Status {
    RETURN_IF_ERROR(crypto::ValidatePartyName(party));
    if (!seen.insert(party).second) {
      return absl::InvalidArgumentError(absl::StrCat(role, " name '", party, "' is used by another party"));
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(check(coordinator.name, "coordinator"));
  for (const std::string& site : sites) RETURN_IF_ERROR(check(site, "site"));
  for (const std::string& admin : admins) RETURN_IF_ERROR(check(admin, "admin"));
  if (sites.empty()) return absl::InvalidArgumentError("a federation needs at least one site");
  if (admins.empty()) return absl::InvalidArgumentError("a federation needs at least one admin");
  return absl::OkStatus();
}

absl::StatusOr<FederationConfig> LoadFederationConfig(const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(config::YamlDocument doc, config::YamlDocument::Load(path));
  FederationConfig cfg;
  {
    config::MapReader root = doc.Root();
    root.Required("federation", &cfg.name);
    root.Optional("validity_days", &cfg.validity_days, 1, 3650);
    config::MapReader coord = root.Map("coordinator");
    coord.Optional("name", &cfg.coordinator.name);
    coord.Optional("listen", &cfg.coordinator.listen);
    coord.Optional("address", &cfg.coordinator.address);
    coord.Optional("hosts", &cfg.coordinator.hosts);
    for (config::MapReader& site : root.MapList("sites")) {
      std::string name;
      site.Required("name", &name);
      cfg.sites.push_back(name);
    }
    for (config::MapReader& admin : root.MapList("admins")) {
      std::string name;
      admin.Required("name", &name);
      cfg.admins.push_back(name);
    }
  }
  RETURN_IF_ERROR(doc.Finish());
  const absl::Status valid = cfg.Validate();
  if (!valid.ok()) return absl::InvalidArgumentError(absl::StrCat(path.string(), ": ", valid.message()));
  return cfg;
}

}  // namespace fedattn::coordinator
