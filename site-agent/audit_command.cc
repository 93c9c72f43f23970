#include "audit_command.h"

#include <iostream>

#include "fedattn/agent/agent_options.h"
#include "fedattn/agent/ledger_audit.h"
#include "fedattn/agent/site_ledger.h"
#include "fedattn/common/files.h"
#include "fedattn/rpc/tls.h"

namespace fedattn::agent {
namespace {

int RunCompare(const std::string& config_path, const std::string& export_path) {
  auto options = LoadAgentOptions(config_path);
  if (!options.ok()) {
    std::cerr << "fedattn-agent audit compare: " << options.status().message() << "\n";
    return 1;
  }
  auto identity = rpc::LoadTlsIdentity(options->tls);
  auto text = ReadFile(export_path);
  // Read-only use: no signer, nothing is written to the ledger.
  auto ledger = SiteLedger::Open(options->state_dir / "ledger.db");
  for (const absl::Status& status : {identity.status(), text.status(), ledger.status()}) {
    if (!status.ok()) {
      std::cerr << "fedattn-agent audit compare: " << status.message() << "\n";
      return 1;
    }
  }
  auto entries = (*ledger)->SignedEntries();
  if (!entries.ok()) {
    std::cerr << "fedattn-agent audit compare: " << entries.status().message() << "\n";
    return 1;
  }
  auto comparison = CompareLedgerWithExport(*entries, options->site_name, *text, identity->ca_pem);
  if (!comparison.ok()) {
    std::cerr << "fedattn-agent audit compare: " << comparison.status().message() << "\n";
    return 1;
  }
  std::cout << "export " << export_path << ": "
            << (comparison->export_verification.ok() ? std::string("verifies")
                                                     : absl::StrCat("DOES NOT VERIFY: ",
                                                                    comparison->export_verification.message()))
            << "\n";
  std::cout << "site '" << options->site_name << "': " << entries->size() << " ledger entries, "
            << comparison->entries_matched << " found unchanged in the export\n";
  for (const LedgerFinding& finding : comparison->findings) {
    std::cout << "  entry " << finding.seq << " " << finding.kind << ": " << finding.detail << "\n";
  }
  if (comparison->clean()) {
    std::cout << "OK: the coordinator's record of this site matches its ledger\n";
    return 0;
  }
  std::cout << "MISMATCH: the coordinator's record of this site does not match its ledger\n";
  return 1;
}

}  // namespace

void AddAuditCommand(CLI::App& app) {
  CLI::App* audit = app.add_subcommand("audit", "Check the coordinator's audit log against this site's ledger");
  audit->require_subcommand(1);
  struct Flags {
    std::string config, export_path;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* compare = audit->add_subcommand(
      "compare", "Report every entry of this site's ledger that the export is missing, has altered or under-counts");
  compare->add_option("--config", flags->config, "The site kit's site.yaml")->required()->check(CLI::ExistingFile);
  compare->add_option("--export", flags->export_path, "An audit export (fedattn audit export -o FILE)")
      ->required()
      ->check(CLI::ExistingFile);
  compare->callback([flags] {
    if (RunCompare(flags->config, flags->export_path) != 0) throw CLI::RuntimeError(1);
    throw CLI::Success();
  });
}

}  // namespace fedattn::agent
