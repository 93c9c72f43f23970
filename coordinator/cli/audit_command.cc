#include "audit_command.h"

#include <cmath>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "admin_client.h"
#include "commands.h"
#include "fedattn/common/files.h"
#include "fedattn/common/status_macros.h"

namespace fedattn::cli {
namespace {

std::string Epsilon(double value) { return std::isinf(value) ? "unbounded" : absl::StrFormat("%.4f", value); }
nlohmann::json EpsilonJson(double value) { return std::isinf(value) ? nlohmann::json(nullptr) : nlohmann::json(value); }

// The CA that audit records must chain to: --ca, else the admin kit's.
absl::StatusOr<std::optional<std::string>> LoadCa(const std::string& ca_file, const std::string& admin_config) {
  if (!ca_file.empty()) {
    ASSIGN_OR_RETURN(std::string pem, ReadFile(ca_file));
    return pem;
  }
  if (admin_config.empty()) return std::nullopt;
  ASSIGN_OR_RETURN(AdminOptions options, LoadAdminOptions(admin_config));
  ASSIGN_OR_RETURN(std::string pem, ReadFile(options.tls.ca_cert));
  return pem;
}

void PrintVerified(const audit::AuditTrail& trail, bool with_ca) {
  std::set<std::string> sites;
  for (const audit::LoggedEntry& entry : trail.entries()) sites.insert(entry.entry.site_name);
  std::cout << "verified: " << trail.size() << " records, hash chain intact, ends with a signed checkpoint; "
            << trail.entries().size() << " ledger entries from " << sites.size()
            << " site(s), every signature valid and every epsilon recomputed\n";
  if (!with_ca) {
    std::cout << "note: certificates were not checked against a CA (pass --ca or --admin-config)\n";
  }
}

}  // namespace

std::vector<audit::BudgetRow> FilterBudgetRows(std::vector<audit::BudgetRow> rows, const std::string& job,
                                               const std::string& site) {
  std::erase_if(rows, [&](const audit::BudgetRow& row) {
    return (!job.empty() && row.job != job) || (!site.empty() && row.site != site);
  });
  return rows;
}

std::string FormatBudgetTable(const std::vector<audit::BudgetRow>& rows) {
  if (rows.empty()) return "no ledger entries in the audit log\n";
  std::string out = absl::StrFormat("%-16s %-22s %7s %7s %10s %8s %11s %10s %10s  %s\n", "SITE", "JOB", "ROUNDS",
                                    "REFUSED", "JOB EPS", "AT DELTA", "SITE TOTAL", "CAP", "REMAINING", "MECHANISM");
  for (const audit::BudgetRow& row : rows) {
    const double remaining = std::isinf(row.cap) ? row.cap : std::max(0.0, row.cap - row.site_epsilon);
    absl::StrAppendFormat(&out, "%-16s %-22s %7d %7d %10s %8g %11s %10s %10s  %s\n", row.site, row.job, row.releases,
                          row.refusals, Epsilon(row.job_epsilon), row.releases > 0 ? row.job_delta : row.cap_delta,
                          Epsilon(row.site_epsilon), Epsilon(row.cap), Epsilon(remaining), row.mechanism);
  }
  absl::StrAppendFormat(&out,
                        "JOB EPS: the job's releases composed at the job's delta; SITE TOTAL and CAP: every release of "
                        "the site, at the cap's delta (%g)\n",
                        rows.front().cap_delta);
  return out;
}

nlohmann::json BudgetTableJson(const std::vector<audit::BudgetRow>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const audit::BudgetRow& row : rows) {
    const double remaining = std::isinf(row.cap) ? row.cap : std::max(0.0, row.cap - row.site_epsilon);
    out.push_back({{"site", row.site},
                   {"job", row.job},
                   {"releases", row.releases},
                   {"refusals", row.refusals},
                   {"rounds", row.rounds},
                   {"job_epsilon", EpsilonJson(row.job_epsilon)},
                   {"job_delta", row.job_delta},
                   {"site_epsilon", EpsilonJson(row.site_epsilon)},
                   {"cap", EpsilonJson(row.cap)},
                   {"cap_delta", row.cap_delta},
                   {"remaining", EpsilonJson(remaining)},
                   {"mechanism", row.mechanism}});
  }
  return out;
}

void AddAuditCommands(CLI::App& app) {
  CLI::App* audit = app.add_subcommand("audit", "Check the privacy budgets and the coordinator's audit log");
  audit->require_subcommand(1);
  struct Flags {
    std::string admin_config, coordinator, job, site, out, file, ca;
    bool json = false;
  };
  auto flags = std::make_shared<Flags>();
  auto connection = [flags](CLI::App* command, bool required) {
    CLI::Option* option =
        command->add_option("--admin-config,--config", flags->admin_config, "The admin kit's admin.yaml")
            ->envname("FEDATTN_ADMIN_CONFIG")
            ->check(CLI::ExistingFile);
    if (required) option->required();
    command->add_option("--coordinator", flags->coordinator, "Dial this host:port instead of the kit's address");
  };
  // Fetches the log from the coordinator and verifies it against the kit's CA.
  auto fetch = [flags](absl::string_view command) -> std::pair<std::string, audit::AuditTrail> {
    auto options = LoadAdminOptions(flags->admin_config);
    ExitOnError(options.status(), command);
    if (!flags->coordinator.empty()) options->coordinator.address = flags->coordinator;
    auto client = AdminClient::Create(*options);
    ExitOnError(client.status(), command);
    auto text = (*client)->ExportAudit();
    ExitOnError(text.status(), command);
    auto trail = audit::VerifyAuditExport(*text, {.ca_pem = (*client)->ca_pem()});
    if (!trail.ok()) {
      ExitOnError(absl::Status(trail.status().code(), absl::StrCat("the coordinator's audit log does not verify: ",
                                                                   trail.status().message())),
                  command);
    }
    return {*std::move(text), *std::move(trail)};
  };

  CLI::App* privacy = audit->add_subcommand(
      "privacy", "The budget table: per site and job, epsilon spent, cap, remaining, rounds, mechanism (verified)");
  connection(privacy, true);
  privacy->add_option("--job", flags->job, "Only this job");
  privacy->add_option("--site", flags->site, "Only this site");
  privacy->add_flag("--json", flags->json, "Print JSON instead of a table");
  privacy->callback([flags, fetch] {
    auto [text, trail] = fetch("audit privacy");
    auto rows = trail.BudgetTable();
    ExitOnError(rows.status(), "audit privacy");
    const std::vector<audit::BudgetRow> shown = FilterBudgetRows(*std::move(rows), flags->job, flags->site);
    if (flags->json) {
      std::cout << BudgetTableJson(shown).dump(2) << "\n";
    } else {
      std::cout << FormatBudgetTable(shown);
    }
  });

  CLI::App* exported = audit->add_subcommand("export", "Write the coordinator's audit log (JSON lines), verified");
  connection(exported, true);
  exported->add_option("-o,--out", flags->out, "Output file")->required();
  exported->callback([flags, fetch] {
    auto [text, trail] = fetch("audit export");
    ExitOnError(WriteFileAtomic(flags->out, text, 0600), "audit export");
    std::cout << "wrote " << flags->out << " (" << text.size() << " bytes)\n";
    PrintVerified(trail, true);
  });

  CLI::App* verify = audit->add_subcommand(
      "verify", "Check an export offline: hash chain, signatures, every epsilon recomputed (exit 1 on the first failure)");
  verify->add_option("file", flags->file, "The export (fedattn audit export -o FILE)")->required()->check(CLI::ExistingFile);
  verify->add_option("--ca", flags->ca, "The federation's CA certificate (default: the admin kit's)")
      ->check(CLI::ExistingFile);
  connection(verify, false);
  verify->add_flag("--json", flags->json, "Print the budget table of the verified export as JSON");
  verify->callback([flags] {
    auto ca = LoadCa(flags->ca, flags->admin_config);
    ExitOnError(ca.status(), "audit verify");
    auto text = ReadFile(flags->file);
    ExitOnError(text.status(), "audit verify");
    auto trail = audit::VerifyAuditExport(*text, {.ca_pem = *ca});
    if (!trail.ok()) {
      ExitOnError(absl::Status(trail.status().code(), absl::StrCat(flags->file, ": FAILED at ", trail.status().message())),
                  "audit verify");
    }
    if (flags->json) {
      auto rows = trail->BudgetTable();
      ExitOnError(rows.status(), "audit verify");
      std::cout << nlohmann::json{{"verified", true}, {"records", trail->size()}, {"budgets", BudgetTableJson(*rows)}}
                       .dump(2)
                << "\n";
      return;
    }
    PrintVerified(*trail, ca->has_value());
  });
}

}  // namespace fedattn::cli
