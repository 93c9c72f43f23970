// A provisioned federation in a temporary directory, with helpers to run its coordinator, agents
// and CLI as real processes on 127.0.0.1 (integration tests).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "fedattn/crypto/certificate.h"
#include "fedattn/rpc/tls.h"
#include "util/subprocess.h"
#include "util/temp_dir.h"

namespace fedattn::testing {

// Paths of the binaries under test (set by CMake).
std::string CoordinatorBinary();
std::string AgentBinary();
std::string CliBinary();

class TestFederation {
 public:
  // Provisions `sites` and one admin ("operator") under a fresh temporary directory.
  explicit TestFederation(std::vector<std::string> sites, const std::string& federation = "test-fed");

  const std::filesystem::path& root() const { return dir_.path(); }
  std::filesystem::path Kit(const std::string& party) const { return dir_.path() / "kits" / party; }

  // Starts the coordinator on a free port (fast heartbeats) with state in `state_dir`
  // (default: the coordinator kit's state/). Returns once it is listening.
  std::unique_ptr<Subprocess> StartCoordinator(const std::string& log_name = "coordinator.log");
  // YAML appended to the coordinator's config by the next StartCoordinator (e.g. a dashboard:
  // section; relative paths are relative to the coordinator kit).
  void SetCoordinatorExtraYaml(std::string yaml) { coordinator_extra_yaml_ = std::move(yaml); }
  // Environment entries ("NAME=value") for the next StartCoordinator (e.g. FEDATTN_FAILPOINT).
  void SetCoordinatorEnv(std::vector<std::string> env) { coordinator_env_ = std::move(env); }
  // Makes the next StartCoordinator check client certificates against the coordinator kit's
  // revocation lists (tls.crl_dir: crl, written by `fedattn provision`).
  void CheckRevocation(bool on) { check_revocation_ = on; }
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // Starts the agent of `site` against the running coordinator. `extra_yaml` is appended to its
  // site.yaml (data:, policy: sections); `env` entries ("NAME=value") go into its environment.
  std::unique_ptr<Subprocess> StartAgent(const std::string& site, const std::string& extra_yaml = "",
                                         const std::vector<std::string>& env = {});
  // Runs the operator CLI (`fedattn ARGS... --config admin.yaml --coordinator ADDRESS`).
  CommandResult Cli(std::vector<std::string> args, absl::Duration timeout = absl::Seconds(60)) const;

  // Runs `fedattn status --json` as the operator.
  CommandResult Status() const;

  // The TLS identity in `kit` for `party` (for hand-made gRPC clients).
  rpc::TlsIdentity Identity(const std::string& party) const;

  // Issues a certificate with this federation's CA into `dir` (expired ones, for example).
  void IssueCertificate(const crypto::CertificateRequest& request, const std::filesystem::path& dir) const;

  // Writes a site.yaml in `dir` pointing at the running coordinator with the given files.
  std::filesystem::path WriteSiteYaml(const std::filesystem::path& dir, const std::string& site,
                                      const std::string& cert, const std::string& key,
                                      const std::filesystem::path& ca,
                                      const std::string& coordinator_name = "coordinator") const;

 private:
  TempDir dir_;
  int port_ = 0;
  std::string coordinator_extra_yaml_;
  std::vector<std::string> coordinator_env_;
  bool check_revocation_ = false;
};

}  // namespace fedattn::testing
