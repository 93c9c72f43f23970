// fedattn-coordinator: runs federated rounds and serves the site and admin APIs over mutual TLS.
#include <string.h>

#include <fstream>
#include <iostream>

#include "CLI/CLI.hpp"
#include "fedattn/common/clock.h"
#include "fedattn/common/logging.h"
#include "fedattn/common/stop_signal.h"
#include "fedattn/config.h"
#include "fedattn/rpc/grpc_logging.h"
#include "fedattn/coordinator/coordinator_options.h"
#include "fedattn/coordinator/coordinator_server.h"

namespace {

int Run(const std::string& config_path, const std::string& listen, const std::string& state_dir,
        const std::string& port_file) {
  auto options = fedattn::coordinator::LoadCoordinatorOptions(config_path);
  if (!options.ok()) {
    std::cerr << "fedattn-coordinator: " << options.status().message() << "\n";
    return 2;
  }
  if (!listen.empty()) options->listen = listen;
  if (!state_dir.empty()) options->state_dir = state_dir;

  auto server = fedattn::coordinator::CoordinatorServer::Start(*std::move(options), fedattn::RealClock::Get());
  if (!server.ok()) {
    spdlog::error("cannot start: {}", server.status().message());
    return 1;
  }
  if (!port_file.empty()) {
    std::ofstream(port_file) << (*server)->port() << "\n";
  }
  {
    const fedattn::StopSignalWatcher watcher([&](int signal) {
      spdlog::info("received {}, shutting down", strsignal(signal));
      (*server)->Shutdown();
    });
    (*server)->Wait();
  }
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("FedAttn coordinator: orchestrates federated rounds across site agents", "fedattn-coordinator");
  app.set_version_flag("--version", "fedattn-coordinator " FEDATTN_VERSION);
  std::string config_path, listen, state_dir, port_file, log_level = "info";
  app.add_option("--config", config_path, "The coordinator kit's coordinator.yaml")->required()->check(CLI::ExistingFile);
  app.add_option("--listen", listen, "Override coordinator.listen (host:port; port 0 picks a free port)");
  app.add_option("--state-dir", state_dir, "Override coordinator.state_dir");
  app.add_option("--port-file", port_file, "Write the bound port to this file once listening");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (const absl::Status status = fedattn::InitLogging("coordinator", log_level); !status.ok()) {
    std::cerr << "fedattn-coordinator: " << status.message() << "\n";
    return 2;
  }
  fedattn::rpc::RouteGrpcLogsToSpdlog();
  try {
    return Run(config_path, listen, state_dir, port_file);
  } catch (const std::exception& e) {
    spdlog::critical("unexpected error: {}", e.what());
    return 1;
  }
}
