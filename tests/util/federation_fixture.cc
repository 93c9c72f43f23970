#include "util/federation_fixture.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace fedattn::testing {

std::filesystem::path WriteJob(const std::filesystem::path& dir, const JobOptions& options) {
  const std::string privacy =
      options.dp ? "  privacy:\n    sample_level:\n      enabled: true\n      noise_multiplier: 1.0\n"
                   "      max_grad_norm: 1.0\n      delta: 1.0e-5\n"
                 : "  privacy:\n    sample_level:\n      enabled: false\n";
  const int min_sites = options.min_sites > 0 ? options.min_sites : options.secagg ? 2 : 1;
  const std::filesystem::path path = dir / (options.name + ".yaml");
  std::ofstream(path) << absl::StrCat(
      "job:\n  name: ", options.name, "\n  seed: ", options.seed, "\n",
      "  model:\n    kind: tabular_transformer\n    task: classification\n    d_model: 8\n    num_layers: 1\n"
      "    num_heads: 2\n    ffn_dim: 16\n    dropout: 0.0\n    attention_dropout: 0.0\n",
      "  data:\n    kind: tabular\n    schema: ",
      (std::filesystem::path(FEDATTN_SOURCE_DIR) / "configs/data/wdbc.schema.yaml").string(),
      "\n    validation_fraction: 0.2\n  rounds: ", options.rounds, "\n  sites:\n    fraction: 1.0\n    min_sites: ",
      min_sites, "\n  strategy:\n    name: ", options.strategy, "\n  local:\n    epochs: 1\n    batch_size: ",
      options.batch_size, "\n    lr: 3.0e-3\n    threads: 1\n", privacy, "  secagg:\n    enabled: ",
      options.secagg ? "true" : "false", "\n    max_dropout_fraction: 0.0\n", "  deadlines:\n    train_s: ",
      options.train_deadline_s, "\n    stage_s: ", options.stage_deadline_s, "\n",
      "  checkpoint:\n    every: ", options.checkpoint_every, "\n");
  return path;
}

std::string FailpointTestName(std::string failpoint) {
  for (char& c : failpoint) {
    if (c == '.' || c == '@') c = '_';
  }
  return failpoint;
}

FederationFixture::FederationFixture(std::vector<std::string> sites) : sites_(sites), federation_(sites) {
  std::ifstream in(std::filesystem::path(FEDATTN_SOURCE_DIR) / "data" / "wdbc.csv");
  std::string header, line;
  std::getline(in, header);
  std::vector<std::ofstream> outs;
  for (const std::string& site : sites_) {
    outs.emplace_back(federation_.root() / (site + ".csv"));
    outs.back() << header << "\n";
  }
  for (size_t row = 0; std::getline(in, line); ++row) {
    outs[row % outs.size()] << line << "\n";
    ++rows_[sites_[row % sites_.size()]];
  }
}

void FederationFixture::StartSite(const std::string& site, const std::vector<std::string>& env) {
  const auto policy = policies_.find(site);
  agents_[site] = federation_.StartAgent(
      site,
      absl::StrCat("data:\n  path: ", (federation_.root() / (site + ".csv")).string(), "\n",
                   policy == policies_.end() ? "" : policy->second),
      env);
}

void FederationFixture::WaitOnline(size_t sites) {
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  std::string last_status;
  while (absl::Now() < deadline) {
    last_status = federation_.Status().output;
    const nlohmann::json json = nlohmann::json::parse(last_status, nullptr, false);
    if (json.is_object() && json.value("sites_online", 0) >= static_cast<int>(sites)) return;
    absl::SleepFor(absl::Milliseconds(200));
  }
  ADD_FAILURE() << "sites did not come online; the last fedattn status said:\n" << last_status << "\n" << Logs();
}

std::string FederationFixture::Submit(const std::filesystem::path& job) {
  const CommandResult result = federation_.Cli({"job", "submit", job.string()});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  // stdout is the id alone; stderr (merged here) says "submitted FILE as job ID; ...".
  for (absl::string_view line : absl::StrSplit(result.output, '\n')) {
    if (!line.empty() && line.find(' ') == absl::string_view::npos) return std::string(line);
  }
  ADD_FAILURE() << "no job id in: " << result.output;
  return "";
}

CommandResult FederationFixture::Wait(const std::string& id) {
  return federation_.Cli({"job", "wait", id, "--timeout", "240", "--interval", "0.5"}, absl::Seconds(260));
}

nlohmann::json FederationFixture::JobStatus(const std::string& id) {
  const CommandResult result = federation_.Cli({"job", "status", id, "--json"});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return nlohmann::json::parse(result.output, nullptr, false);
}

std::string FederationFixture::Logs() {
  std::string logs = coordinator_ ? "coordinator:\n" + coordinator_->Log() : "";
  for (auto& [site, agent] : agents_) logs += "\n" + site + ":\n" + (agent ? agent->Log() : "");
  return logs;
}

std::filesystem::path FederationFixture::ExportAudit(const std::string& name) {
  const std::filesystem::path out = federation_.root() / name;
  const CommandResult result = federation_.Cli({"audit", "export", "-o", out.string()});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return out;
}

CommandResult FederationFixture::Compare(const std::string& site, const std::filesystem::path& exported) {
  return RunCommand({AgentBinary(), "audit", "compare", "--config",
                     (federation_.Kit(site) / "site-test.yaml").string(), "--export", exported.string()},
                    absl::Seconds(60));
}

std::vector<agent::SignedLedgerEntry> FederationFixture::Ledger(const std::string& site) {
  auto ledger = agent::SiteLedger::Open(federation_.Kit(site) / "state" / "ledger.db");
  EXPECT_TRUE(ledger.ok()) << ledger.status();
  if (!ledger.ok()) return {};
  auto entries = (*ledger)->SignedEntries();
  EXPECT_TRUE(entries.ok()) << entries.status();
  return entries.ok() ? *entries : std::vector<agent::SignedLedgerEntry>{};
}

void FederationFixture::StartWithFailpoint(const std::string& failpoint, bool in_coordinator,
                                           const std::string& victim) {
  const std::string armed = "FEDATTN_FAILPOINT=" + failpoint;
  federation_.SetCoordinatorEnv(in_coordinator ? std::vector<std::string>{armed} : std::vector<std::string>{});
  coordinator_ = federation_.StartCoordinator();
  for (const std::string& site : sites_) {
    StartSite(site, !in_coordinator && site == victim ? std::vector<std::string>{armed} : std::vector<std::string>{});
  }
  WaitOnline(sites_.size());
}

bool FederationFixture::RestartAfterFailpoint(bool in_coordinator, const std::string& victim,
                                              absl::Duration timeout) {
  Subprocess& process = in_coordinator ? *coordinator_ : *agents_[victim];
  const std::optional<int> code = process.Wait(timeout);
  if (!code.has_value()) {
    ADD_FAILURE() << "the failpoint never fired\n" << Logs();
    return false;
  }
  if (*code != 137) {
    ADD_FAILURE() << "exit status " << *code << ", not 137 (a failpoint)\n" << Logs();
    return false;
  }
  if (in_coordinator) {
    federation_.SetCoordinatorEnv({});
    coordinator_ = federation_.StartCoordinator("coordinator-restarted.log");
  } else {
    StartSite(victim);
  }
  return true;
}

}  // namespace fedattn::testing
