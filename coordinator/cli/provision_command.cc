#include <filesystem>
#include <iostream>

#include "absl/time/clock.h"
#include "commands.h"
#include "fedattn/coordinator/federation_config.h"
#include "fedattn/coordinator/provision.h"

namespace fedattn::cli {

void ExitOnError(const absl::Status& status, absl::string_view command) {
  if (status.ok()) return;
  std::cerr << "fedattn " << command << ": " << status.message() << "\n";
  throw CLI::RuntimeError(1);
}

nlohmann::json ProvisionToJson(const coordinator::FederationConfig& config, const std::string& out) {
  const std::filesystem::path root(out);
  nlohmann::json kits = nlohmann::json::array();
  auto add = [&](const std::string& party, const char* role) {
    kits.push_back({{"party", party}, {"role", role}, {"path", (root / "kits" / party).string()}});
  };
  add(config.coordinator.name, "coordinator");
  for (const std::string& site : config.sites) add(site, "site");
  for (const std::string& admin : config.admins) add(admin, "admin");
  return {{"federation", config.name}, {"ca", (root / "ca").string()}, {"kits", kits}};
}

void AddProvisionCommand(CLI::App& app) {
  struct Flags {
    std::string config;
    std::string out;
    std::string revoke;
    bool json = false;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* command = app.add_subcommand(
      "provision", "Create the consortium CA and a startup kit per coordinator, site and admin");
  command->add_option("--config", flags->config, "The federation YAML (see configs/federation.yaml)")
      ->check(CLI::ExistingFile);
  command->add_option("--out", flags->out, "Directory to write the CA and kits into")->required();
  command->add_option("--revoke", flags->revoke,
                      "Revoke the certificate in this party's kit under --out: writes the CA's new revocation "
                      "list into every kit's crl/ folder (no --config)");
  command->add_flag("--json", flags->json, "Print the CA folder and every kit (party, role, path) as JSON");
  command->callback([flags] {
    if (!flags->revoke.empty()) {
      ExitOnError(coordinator::RevokeParty(flags->out, flags->revoke, absl::Now()), "provision --revoke");
      std::cout << "Revoked: " << flags->revoke << " (CRL in " << flags->out << "/ca/ca.crl)\n";
      std::cout << "Copy each kit's crl/ folder to its party (the coordinator's first): every party refuses the\n"
                   "revoked certificate at its next TLS handshake.\n";
      return;
    }
    if (flags->config.empty()) ExitOnError(absl::InvalidArgumentError("--config is required"), "provision");
    auto config = coordinator::LoadFederationConfig(flags->config);
    ExitOnError(config.status(), "provision");
    ExitOnError(coordinator::Provision(*config, flags->out, absl::Now()), "provision");
    if (flags->json) {
      std::cout << ProvisionToJson(*config, flags->out).dump(2) << "\n";
      return;
    }
    std::cout << "CA:    " << flags->out << "/ca/ (keep ca.key offline; it is not part of any kit)\n";
    std::cout << "Kits:  " << flags->out << "/kits/<party>/ — hand each party its own folder:\n";
    std::cout << "  coordinator  " << config->coordinator.name << "\n";
    for (const std::string& site : config->sites) std::cout << "  site         " << site << "\n";
    for (const std::string& admin : config->admins) std::cout << "  admin        " << admin << "\n";
  });
}

}  // namespace fedattn::cli
