// Fuzz target: configuration loading, the YAML an operator or a hospital's IT writes by hand.
// The first byte picks the loader (its value mod 5; the seeds start with an ASCII digit):
//   0 job spec (models::ParseJobSpec, then the checks a site makes before training)
//   1 site.yaml (agent::LoadAgentOptions: agent, policy and data sections)
//   2 coordinator.yaml (coordinator::LoadCoordinatorOptions)
//   3 federation.yaml (coordinator::LoadFederationConfig)
//   4 an operator's job file with references (models::ResolveJobFile, then ParseJobSpec)
// The rest is the file. Every input must load or be refused with INVALID_ARGUMENT / NOT_FOUND
// and a message; anything else (a crash, an exception out of yaml-cpp, another code) fails.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "fedattn/agent/agent_options.h"
#include "fedattn/agent/site_policy.h"
#include "fedattn/coordinator/coordinator_options.h"
#include "fedattn/coordinator/federation_config.h"
#include "fedattn/models/job_spec.h"

namespace {

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "config_fuzz: %s\n", what);
    std::abort();
  }
}

void CheckRefusal(const absl::Status& status) {
  if (status.ok()) return;
  if (!absl::IsInvalidArgument(status) && !absl::IsNotFound(status)) {
    std::fprintf(stderr, "config_fuzz: unexpected code: %s\n", status.ToString().c_str());
    std::abort();
  }
  Check(!status.message().empty(), "a refusal without a message");
}

// The loaders take paths: one private directory per process, one file per loader.
const std::filesystem::path& Scratch() {
  static const std::filesystem::path dir = [] {
    std::string pattern = (std::filesystem::temp_directory_path() / "fedattn-config-fuzz-XXXXXX").string();
    Check(mkdtemp(pattern.data()) != nullptr, "mkdtemp failed");
    return std::filesystem::path(pattern);
  }();
  return dir;
}

std::filesystem::path WriteFile(const char* name, const std::string& text) {
  const std::filesystem::path path = Scratch() / name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  Check(out.good(), "cannot write the scratch file");
  return path;
}

void CheckJob(const fedattn::models::JobSpec& job) {
  // A parsed job is what an agent checks against its policy before touching data.
  fedattn::agent::SitePolicy policy;
  (void)fedattn::agent::CheckJobAgainstPolicy(policy, job);
  policy.epsilon_max = 1.0;
  policy.require_secagg = true;
  (void)fedattn::agent::CheckJobAgainstPolicy(policy, job);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 5) {
    case 0: {
      auto job = fedattn::models::ParseJobSpec(text, "fuzz-job.yaml");
      CheckRefusal(job.status());
      if (job.ok()) CheckJob(*job);
      break;
    }
    case 1:
      CheckRefusal(fedattn::agent::LoadAgentOptions(WriteFile("site.yaml", text)).status());
      break;
    case 2:
      CheckRefusal(fedattn::coordinator::LoadCoordinatorOptions(WriteFile("coordinator.yaml", text)).status());
      break;
    case 3:
      CheckRefusal(fedattn::coordinator::LoadFederationConfig(WriteFile("federation.yaml", text)).status());
      break;
    case 4: {
      auto resolved = fedattn::models::ResolveJobFile(WriteFile("job.yaml", text));
      CheckRefusal(resolved.status());
      if (!resolved.ok()) break;
      // What ResolveJobFile returns, ParseJobSpec must accept (the admin API re-parses it).
      auto job = fedattn::models::ParseJobSpec(*resolved, "resolved");
      if (!job.ok()) std::fprintf(stderr, "config_fuzz: %s\n", job.status().ToString().c_str());
      Check(job.ok(), "a resolved job that ParseJobSpec refuses");
      CheckJob(*job);
      break;
    }
  }
  return 0;
}
