#include "util/test_federation.h"

#include <fstream>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fedattn/common/files.h"
#include "fedattn/coordinator/federation_config.h"
#include "fedattn/coordinator/provision.h"
#include "gtest/gtest.h"

namespace fedattn::testing {

std::string CoordinatorBinary() { return FEDATTN_COORDINATOR_BIN; }
std::string AgentBinary() { return FEDATTN_AGENT_BIN; }
std::string CliBinary() { return FEDATTN_CLI_BIN; }

namespace {

void WriteText(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

}  // namespace

TestFederation::TestFederation(std::vector<std::string> sites, const std::string& federation) {
  coordinator::FederationConfig config;
  config.name = federation;
  config.coordinator.address = "127.0.0.1:0";
  config.sites = std::move(sites);
  config.admins = {"operator"};
  const absl::Status status = coordinator::Provision(config, dir_.path(), absl::Now());
  if (!status.ok()) throw std::runtime_error(std::string(status.message()));
}

std::unique_ptr<Subprocess> TestFederation::StartCoordinator(const std::string& log_name) {
  const std::filesystem::path kit = Kit("coordinator");
  WriteText(kit / "coordinator-test.yaml",
            absl::StrCat("coordinator:\n  name: coordinator\n  listen: 127.0.0.1:0\n  state_dir: state\n"
                         "  heartbeat_interval_seconds: 0.3\n  online_window_seconds: 3\n"
                         "tls:\n  ca: ca.crt\n  cert: coordinator.crt\n  key: coordinator.key\n",
                         check_revocation_ ? "  crl_dir: crl\n" : ""));
  std::ofstream(kit / "coordinator-test.yaml", std::ios::app) << coordinator_extra_yaml_;
  const std::filesystem::path port_file = kit / "port";
  std::filesystem::remove(port_file);
  std::vector<std::string> argv;
  if (!coordinator_env_.empty()) {
    argv.push_back("/usr/bin/env");
    argv.insert(argv.end(), coordinator_env_.begin(), coordinator_env_.end());
  }
  for (const std::string& arg : {CoordinatorBinary(), std::string("--config"), (kit / "coordinator-test.yaml").string(),
                                 std::string("--port-file"), port_file.string(), std::string("--log-level"),
                                 std::string("debug")}) {
    argv.push_back(arg);
  }
  if (port_ != 0) {  // a restart keeps its address so the agents find it again
    argv.push_back("--listen");
    argv.push_back(address());
  }
  auto process = std::make_unique<Subprocess>(argv, root() / log_name);
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    std::ifstream in(port_file);
    int port = 0;
    if (in >> port && port > 0) {
      port_ = port;
      return process;
    }
    if (!process->running()) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  ADD_FAILURE() << "coordinator did not start:\n" << process->Log();
  return process;
}

std::filesystem::path TestFederation::WriteSiteYaml(const std::filesystem::path& dir, const std::string& site,
                                                    const std::string& cert, const std::string& key,
                                                    const std::filesystem::path& ca,
                                                    const std::string& coordinator_name) const {
  const std::filesystem::path path = dir / "site-test.yaml";
  WriteText(path, absl::StrCat("site:\n  name: ", site, "\n  state_dir: state\n", "coordinator:\n  address: ",
                               address(), "\n  name: ", coordinator_name, "\n", "tls:\n  ca: ", ca.string(),
                               "\n  cert: ", cert, "\n  key: ", key, "\n",
                               "connection:\n  initial_backoff_seconds: 0.1\n  max_backoff_seconds: 0.5\n"
                               "  pull_wait_seconds: 0.3\n"));
  return path;
}

std::unique_ptr<Subprocess> TestFederation::StartAgent(const std::string& site, const std::string& extra_yaml,
                                                       const std::vector<std::string>& env) {
  const std::filesystem::path kit = Kit(site);
  const std::filesystem::path yaml =
      WriteSiteYaml(kit, site, site + ".crt", site + ".key", kit / "ca.crt");
  if (!extra_yaml.empty()) {
    std::ofstream out(yaml, std::ios::app);
    out << extra_yaml;
  }
  std::vector<std::string> argv;
  if (!env.empty()) {
    argv.push_back("/usr/bin/env");
    argv.insert(argv.end(), env.begin(), env.end());
  }
  for (const std::string& arg : {AgentBinary(), std::string("--config"), yaml.string(), std::string("--log-level"),
                                 std::string("debug")}) {
    argv.push_back(arg);
  }
  return std::make_unique<Subprocess>(argv, root() / (site + ".log"));
}

CommandResult TestFederation::Cli(std::vector<std::string> args, absl::Duration timeout) const {
  std::vector<std::string> argv = {CliBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  for (const std::string& arg : {std::string("--config"), (Kit("operator") / "admin.yaml").string(),
                                 std::string("--coordinator"), address()}) {
    argv.push_back(arg);
  }
  return RunCommand(argv, timeout);
}

CommandResult TestFederation::Status() const {
  return RunCommand({CliBinary(), "status", "--config", (Kit("operator") / "admin.yaml").string(), "--coordinator",
                     address(), "--json"});
}

rpc::TlsIdentity TestFederation::Identity(const std::string& party) const {
  const std::filesystem::path kit = Kit(party);
  auto identity = rpc::LoadTlsIdentity({kit / "ca.crt", kit / (party + ".crt"), kit / (party + ".key"), {}});
  if (!identity.ok()) throw std::runtime_error(std::string(identity.status().message()));
  return *std::move(identity);
}

void TestFederation::IssueCertificate(const crypto::CertificateRequest& request,
                                      const std::filesystem::path& dir) const {
  const absl::Status status = coordinator::IssuePartyCertificate(root(), request, dir);
  if (!status.ok()) throw std::runtime_error(std::string(status.message()));
}

}  // namespace fedattn::testing
