// fedattn: the operator CLI (provisioning, status, jobs and models, privacy, audits).
#include <iostream>

#include "CLI/CLI.hpp"
#include "audit_command.h"
#include "commands.h"
#include "job_command.h"
#include "privacy_command.h"
#include "fedattn/common/logging.h"
#include "fedattn/config.h"
#include "fedattn/rpc/grpc_logging.h"

int main(int argc, char** argv) {
  CLI::App app("FedAttn operator CLI: provision a federation, watch its coordinator, run jobs, compute privacy budgets",
               "fedattn");
  app.set_version_flag("--version", "fedattn " FEDATTN_VERSION);
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")->capture_default_str();
  app.require_subcommand(1);
  fedattn::cli::AddProvisionCommand(app);
  fedattn::cli::AddStatusCommand(app);
  fedattn::cli::AddJobCommands(app);
  fedattn::cli::AddPrivacyCommand(app);
  fedattn::cli::AddAuditCommands(app);
  app.parse_complete_callback([&] {
    const absl::Status status = fedattn::InitLogging("fedattn", log_level);
    if (!status.ok()) throw CLI::ValidationError("--log-level", std::string(status.message()));
    fedattn::rpc::RouteGrpcLogsToSpdlog();
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "fedattn: unexpected error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
