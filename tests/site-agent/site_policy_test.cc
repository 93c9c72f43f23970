#include "fedattn/agent/site_policy.h"

#include <fstream>

#include "fedattn/agent/agent_options.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/config/yaml_reader.h"
#include "fedattn/crypto/digest.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/temp_dir.h"

namespace fedattn::agent {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<SitePolicy> ParsePolicy(const std::string& yaml) {
  ASSIGN_OR_RETURN(config::YamlDocument doc, config::YamlDocument::Parse(yaml, "site.yaml"));
  SitePolicy policy;
  {
    config::MapReader root = doc.Root();
    config::MapReader section = root.Map("policy");
    ReadSitePolicy(section, &policy);
  }
  RETURN_IF_ERROR(doc.Finish());
  return policy;
}

models::JobSpec Job(const std::string& extra = "") {
  auto job = models::ParseJobSpec(
      "job:\n  name: x\n  model: {kind: tabular_transformer, d_model: 8, num_heads: 2}\n"
      "  data:\n    schema: {label: {column: y, classes: [a, b]}, features: [{name: f}]}\n"
      "  rounds: 10\n  local: {epochs: 1}\n" + extra,
      "job");
  EXPECT_TRUE(job.ok()) << job.status();
  return *job;
}

const char kDp[] = "  privacy:\n    sample_level: {noise_multiplier: 1.0}\n";

std::string Denial(const SitePolicy& policy, const models::JobSpec& job) {
  const absl::Status status = CheckJobAgainstPolicy(policy, job);
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  return std::string(status.message());
}

TEST(SitePolicyTest, DefaultsTakeAnyDpJob) {
  SitePolicy policy;
  EXPECT_EQ(policy.allowed_models, (std::vector<std::string>{"tabular", "text"}));
  EXPECT_EQ(policy.allowed_strategies, models::AllStrategyNames());
  EXPECT_TRUE(policy.require_sample_dp);
  EXPECT_FALSE(policy.require_secagg);
  EXPECT_FALSE(policy.has_cap());
  EXPECT_EQ(policy.delta, 1e-5);
  EXPECT_EQ(policy.max_rounds, 1000);
  EXPECT_TRUE(CheckJobAgainstPolicy(policy, Job(kDp)).ok());
  EXPECT_THAT(Denial(policy, Job()), HasSubstr("job 'x' trains without sample-level DP (privacy.sample_level), "
                                               "and this site's policy.require_sample_dp is true"));
}

TEST(SitePolicyTest, ReadsEveryKey) {
  auto policy = ParsePolicy(
      "policy:\n  allowed_models: [tabular]\n  allowed_strategies: [fedavg, fedprox]\n"
      "  require_sample_dp: false\n  require_secagg: true\n  epsilon_max: 8.0\n  delta: 1.0e-6\n"
      "  max_rounds: 50\n");
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->allowed_models, std::vector<std::string>{"tabular"});
  EXPECT_EQ(policy->allowed_strategies, (std::vector<std::string>{"fedavg", "fedprox"}));
  EXPECT_FALSE(policy->require_sample_dp);
  EXPECT_TRUE(policy->require_secagg);
  EXPECT_TRUE(policy->has_cap());
  EXPECT_EQ(policy->epsilon_max, 8.0);
  EXPECT_EQ(policy->delta, 1e-6);
  EXPECT_EQ(policy->max_rounds, 50);
}

TEST(SitePolicyTest, RefusesBadPolicies) {
  EXPECT_THAT(std::string(ParsePolicy("policy:\n  allowed_strategies: [fedavg, krum]\n").status().message()),
              HasSubstr("site.yaml:2: policy.allowed_strategies: unknown name 'krum'"));
  EXPECT_THAT(std::string(ParsePolicy("policy:\n  allowed_models: [images]\n").status().message()),
              HasSubstr("site.yaml:2: policy.allowed_models: unknown name 'images' (expected some of tabular, text)"));
  EXPECT_THAT(std::string(ParsePolicy("policy:\n  epsilon_max: 0\n").status().message()),
              HasSubstr("site.yaml:2: policy.epsilon_max: must be > 0 (leave it out for no cap)"));
  EXPECT_THAT(std::string(ParsePolicy("policy:\n  epsilon_max: -1\n").status().message()),
              HasSubstr("policy.epsilon_max: must be between 0 and"));
  EXPECT_THAT(std::string(ParsePolicy("policy:\n  delta: 0\n").status().message()),
              HasSubstr("site.yaml:2: policy.delta: must be in (0, 1)"));
  EXPECT_THAT(std::string(ParsePolicy("policy:\n  max_rounds: 0\n").status().message()),
              HasSubstr("policy.max_rounds: must be between 1 and"));
  EXPECT_THAT(std::string(ParsePolicy("policy:\n  require_dp: true\n").status().message()),
              HasSubstr("site.yaml:2: policy.require_dp: unknown key"));
}

TEST(SitePolicyTest, EachRuleRefusesWithItsReason) {
  SitePolicy policy;
  policy.allowed_strategies = {"fedavg"};
  EXPECT_EQ(Denial(policy, Job(std::string(kDp) + "  strategy: {name: median}\n  secagg: {enabled: false}\n")),
            "job 'x' uses strategy 'median', not in this site's policy.allowed_strategies [fedavg]");

  policy = SitePolicy();
  policy.allowed_models = {"text"};
  EXPECT_EQ(Denial(policy, Job(kDp)), "job 'x' trains a tabular model, not in this site's policy.allowed_models [text]");

  policy = SitePolicy();
  policy.max_rounds = 5;
  EXPECT_EQ(Denial(policy, Job(kDp)), "job 'x' asks for 10 rounds, more than this site's policy.max_rounds (5)");

  policy = SitePolicy();
  policy.require_secagg = true;
  EXPECT_THAT(Denial(policy, Job(std::string(kDp) + "  secagg: {enabled: false}\n")),
              HasSubstr("runs without secure aggregation (secagg.enabled: false), and this site's "
                        "policy.require_secagg is true"));
  EXPECT_TRUE(CheckJobAgainstPolicy(policy, Job(kDp)).ok());

  policy = SitePolicy();
  EXPECT_EQ(Denial(policy, Job("  privacy:\n    sample_level: {noise_multiplier: 1.0, delta: 1.0e-4}\n")),
            "job 'x' uses delta 0.0001, above this site's policy.delta 1e-05");

  policy.epsilon_max = 4;
  EXPECT_EQ(Denial(policy, Job("  privacy:\n    sample_level: {target_epsilon: 6}\n")),
            "job 'x' targets epsilon 6, above this site's policy.epsilon_max 4");
  EXPECT_TRUE(CheckJobAgainstPolicy(policy, Job("  privacy:\n    sample_level: {target_epsilon: 3}\n")).ok());
}

TEST(SitePolicyTest, NoDpWithACapIsUnboundedEpsilon) {
  SitePolicy policy;
  policy.require_sample_dp = false;
  EXPECT_TRUE(CheckJobAgainstPolicy(policy, Job()).ok());  // no cap: the site accepts it knowingly
  policy.epsilon_max = 8;
  EXPECT_EQ(Denial(policy, Job()),
            "job 'x' trains without sample-level DP, so each release has unbounded epsilon, and this site caps "
            "epsilon at policy.epsilon_max = 8");
}

TEST(SiteDataTest, DatasetIdIsGivenOrTheFileHash) {
  testing::TempDir dir;
  std::ofstream(dir / "data.csv") << "a,b\n1,2\n";
  SiteData data{.path = dir / "data.csv"};
  auto id = DatasetId(data);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, "sha256:" + crypto::ToHex(crypto::Sha256("a,b\n1,2\n")));
  data.id = "wdbc-hospital-a";
  EXPECT_EQ(*DatasetId(data), "wdbc-hospital-a");
  EXPECT_EQ(DatasetId(SiteData{.path = dir / "absent.csv"}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(DatasetId(SiteData()).status().code(), absl::StatusCode::kFailedPrecondition);
}

const char kSite[] =
    "site:\n  name: hospital-a\ncoordinator:\n  address: 127.0.0.1:50051\n"
    "tls:\n  ca: ca.crt\n  cert: a.crt\n  key: a.key\n";

TEST(SiteDataTest, AgentOptionsCarryPolicyAndData) {
  testing::TempDir dir;
  std::ofstream(dir / "site.yaml") << kSite;
  auto defaults = LoadAgentOptions(dir / "site.yaml");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_TRUE(defaults->data.path.empty());
  EXPECT_TRUE(defaults->policy.require_sample_dp);

  std::ofstream(dir / "site.yaml") << kSite
                                   << "policy:\n  epsilon_max: 8.0\n  allowed_strategies: [fedavg]\n"
                                      "data:\n  path: data/site-a.csv\n  id: wdbc-a\n";
  auto options = LoadAgentOptions(dir / "site.yaml");
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->policy.epsilon_max, 8.0);
  EXPECT_EQ(options->policy.allowed_strategies, std::vector<std::string>{"fedavg"});
  EXPECT_EQ(options->data.path, dir / "data/site-a.csv");
  EXPECT_EQ(options->data.id, "wdbc-a");

  std::ofstream(dir / "site.yaml") << kSite << "data:\n  id: x\n";
  EXPECT_THAT(std::string(LoadAgentOptions(dir / "site.yaml").status().message()),
              HasSubstr("site.yaml:10: data.path: required key is missing"));
  std::ofstream(dir / "site.yaml") << kSite << "policy:\n  max_round: 3\n";
  EXPECT_THAT(std::string(LoadAgentOptions(dir / "site.yaml").status().message()),
              HasSubstr("site.yaml:10: policy.max_round: unknown key"));
}

}  // namespace
}  // namespace fedattn::agent
