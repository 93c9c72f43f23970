// A site's own rules for the jobs it takes (the `policy:` section of site.yaml) and the dataset
// it trains on (the `data:` section); docs/jobs.md. The policy is the hospital's, not the
// consortium's: the agent checks every job against it before touching data, and refuses with a
// reason the operator can act on.
#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fedattn/models/job_spec.h"

namespace fedattn::config {
class MapReader;
}

namespace fedattn::agent {

struct SitePolicy {
  std::vector<std::string> allowed_models = {"tabular", "text"};  // model kinds this site trains
  std::vector<std::string> allowed_strategies = models::AllStrategyNames();
  bool require_sample_dp = true;  // refuse jobs without sample-level DP
  bool require_secagg = false;    // refuse jobs without secure aggregation
  // The site's privacy cap across all jobs, at `delta`; +inf (the default) is no cap. With a
  // cap, a job without sample-level DP is refused: its releases have unbounded epsilon.
  double epsilon_max = std::numeric_limits<double>::infinity();
  double delta = 1e-5;       // the cap's delta; a job's delta must not exceed it
  int64_t max_rounds = 1000;  // refuse jobs asking more rounds than this

  bool has_cap() const { return epsilon_max != std::numeric_limits<double>::infinity(); }
};

// "tabular" or "text": the policy's name for a model kind.
absl::string_view PolicyModelName(models::ModelKind kind);

// Reads the `policy:` mapping; problems are recorded in the reader's document.
void ReadSitePolicy(config::MapReader& policy, SitePolicy* out);

// PERMISSION_DENIED, with the first rule the job breaks and how to read it, e.g. "job 'x' uses
// strategy 'median', not in this site's policy.allowed_strategies [fedavg]"; OK otherwise.
// The privacy budget itself (epsilon_max against what was already spent) is the ledger's check,
// round by round (site_ledger.h); this one needs no state.
[[nodiscard]] absl::Status CheckJobAgainstPolicy(const SitePolicy& policy, const models::JobSpec& job);

// The dataset a site trains jobs on.
struct SiteData {
  std::filesystem::path path;  // CSV (tabular, text) or JSONL (text); empty: no data section
  std::string id;              // dataset id for the ledger; empty: DatasetId() hashes the file
};

// Reads the `data:` mapping (path relative to site.yaml's directory).
void ReadSiteData(config::MapReader& data, SiteData* out);

// The id the ledger records: `data.id` when given, else "sha256:<hex of the file's bytes>".
// Errors: FAILED_PRECONDITION without a data section; NOT_FOUND for a missing file.
[[nodiscard]] absl::StatusOr<std::string> DatasetId(const SiteData& data);

}  // namespace fedattn::agent
