#include "fedattn/agent/site_policy.h"

#include <algorithm>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "fedattn/config/yaml_reader.h"
#include "fedattn/crypto/digest.h"

namespace fedattn::agent {
namespace {

bool Contains(const std::vector<std::string>& values, absl::string_view value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

void ReadNames(config::MapReader& policy, absl::string_view key, const std::vector<std::string>& known,
               std::vector<std::string>* out) {
  policy.Optional(key, out);
  for (const std::string& name : *out) {
    if (!Contains(known, name)) {
      policy.Error(key, absl::StrCat("unknown name '", name, "' (expected some of ", absl::StrJoin(known, ", "), ")"));
    }
  }
}

absl::Status Denied(const models::JobSpec& job, absl::string_view why) {
  return absl::PermissionDeniedError(absl::StrCat("job '", job.name, "' ", why));
}

std::string List(const std::vector<std::string>& names) { return absl::StrCat("[", absl::StrJoin(names, ", "), "]"); }

}  // namespace

absl::string_view PolicyModelName(models::ModelKind kind) {
  return kind == models::ModelKind::kTabularTransformer ? "tabular" : "text";
}

void ReadSitePolicy(config::MapReader& policy, SitePolicy* out) {
  ReadNames(policy, "allowed_models", {"tabular", "text"}, &out->allowed_models);
  ReadNames(policy, "allowed_strategies", models::AllStrategyNames(), &out->allowed_strategies);
  policy.Optional("require_sample_dp", &out->require_sample_dp);
  policy.Optional("require_secagg", &out->require_secagg);
  if (policy.Has("epsilon_max")) {
    double cap = 0;
    policy.Required("epsilon_max", &cap, 0.0, 1e6);
    if (cap > 0) {
      out->epsilon_max = cap;
    } else {
      policy.Error("epsilon_max", "must be > 0 (leave it out for no cap)");
    }
  } else {
    policy.Optional("epsilon_max", &out->epsilon_max);  // marks the key read
  }
  double delta = out->delta;
  policy.Optional("delta", &delta, 0.0, 1.0);
  if (delta > 0 && delta < 1) {
    out->delta = delta;
  } else {
    policy.Error("delta", "must be in (0, 1)");
  }
  policy.Optional("max_rounds", &out->max_rounds, 1, 100000000);
}

absl::Status CheckJobAgainstPolicy(const SitePolicy& policy, const models::JobSpec& job) {
  const absl::string_view model = PolicyModelName(job.model.kind());
  if (!Contains(policy.allowed_models, model)) {
    return Denied(job, absl::StrCat("trains a ", model, " model, not in this site's policy.allowed_models ",
                                    List(policy.allowed_models)));
  }
  if (!Contains(policy.allowed_strategies, job.strategy.name)) {
    return Denied(job, absl::StrCat("uses strategy '", job.strategy.name,
                                    "', not in this site's policy.allowed_strategies ",
                                    List(policy.allowed_strategies)));
  }
  if (job.rounds > policy.max_rounds) {
    return Denied(job, absl::StrCat("asks for ", job.rounds, " rounds, more than this site's policy.max_rounds (",
                                    policy.max_rounds, ")"));
  }
  if (policy.require_secagg && !job.secagg.enabled) {
    return Denied(job, "runs without secure aggregation (secagg.enabled: false), and this site's "
                       "policy.require_secagg is true");
  }
  if (!job.sample_dp.enabled) {
    if (policy.require_sample_dp) {
      return Denied(job, "trains without sample-level DP (privacy.sample_level), and this site's "
                         "policy.require_sample_dp is true");
    }
    if (policy.has_cap()) {
      return Denied(job, absl::StrFormat("trains without sample-level DP, so each release has unbounded "
                                         "epsilon, and this site caps epsilon at policy.epsilon_max = %g",
                                         policy.epsilon_max));
    }
    return absl::OkStatus();
  }
  if (job.sample_dp.delta > policy.delta) {
    return Denied(job, absl::StrFormat("uses delta %g, above this site's policy.delta %g", job.sample_dp.delta,
                                       policy.delta));
  }
  if (policy.has_cap() && job.sample_dp.target_epsilon > policy.epsilon_max) {
    return Denied(job, absl::StrFormat("targets epsilon %g, above this site's policy.epsilon_max %g",
                                       job.sample_dp.target_epsilon, policy.epsilon_max));
  }
  return absl::OkStatus();
}

void ReadSiteData(config::MapReader& data, SiteData* out) {
  data.RequiredPath("path", &out->path);
  data.Optional("id", &out->id);
  if (data.Has("id") && out->id.empty()) data.Error("id", "must not be empty (leave it out to hash the file)");
}

absl::StatusOr<std::string> DatasetId(const SiteData& data) {
  if (!data.id.empty()) return data.id;
  if (data.path.empty()) return absl::FailedPreconditionError("this site has no data section in its site.yaml");
  std::ifstream in(data.path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open the site's data file ", data.path.string()));
  crypto::Sha256Hasher hasher;
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    hasher.Update(absl::string_view(buffer.data(), static_cast<size_t>(in.gcount())));
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat("reading ", data.path.string()));
  const crypto::Sha256Digest digest = hasher.Finish();
  return absl::StrCat("sha256:", crypto::ToHex(digest));
}

}  // namespace fedattn::agent
