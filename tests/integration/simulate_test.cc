// fedattn-simulate end to end: three virtual sites and the real coordinator in one process run a
// tiny DP job with SecAgg+, and the binary prints the round table and each site's epsilon.
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "util/subprocess.h"
#include "util/temp_dir.h"

namespace fedattn::testing {
namespace {

// A tiny FT-Transformer on WDBC so each round takes a second or two per site.
// `noise` is the sample_level key that sets the noise: a fixed noise_multiplier, or target_epsilon.
std::filesystem::path WriteJob(const std::filesystem::path& dir, int rounds, int min_sites,
                               const std::string& noise = "noise_multiplier: 1.0") {
  const std::filesystem::path source(FEDATTN_SOURCE_DIR);
  const std::filesystem::path path = dir / "tiny.yaml";
  std::ofstream(path) << absl::StrCat(
      "job:\n  name: tiny-sim\n  seed: 3\n",
      "  model:\n    kind: tabular_transformer\n    task: classification\n    d_model: 8\n    num_layers: 1\n"
      "    num_heads: 2\n    ffn_dim: 16\n    dropout: 0.0\n    attention_dropout: 0.0\n",
      "  data:\n    kind: tabular\n    schema: ", (source / "configs/data/wdbc.schema.yaml").string(),
      "\n    validation_fraction: 0.2\n",
      "  rounds: ", rounds, "\n  sites:\n    fraction: 1.0\n    min_sites: ", min_sites, "\n",
      "  strategy:\n    name: fedavg\n",
      "  local:\n    epochs: 1\n    batch_size: 32\n    lr: 3.0e-3\n    threads: 0\n",
      "  privacy:\n    sample_level:\n      enabled: true\n      ", noise, "\n"
      "      max_grad_norm: 1.0\n      delta: 1.0e-5\n",
      "  secagg:\n    enabled: true\n    max_dropout_fraction: 0.0\n",
      "  deadlines:\n    train_s: 60\n    stage_s: 20\n");
  return path;
}

CommandResult Simulate(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {FEDATTN_SIMULATE_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, absl::Seconds(280));
}

std::string Wdbc() { return (std::filesystem::path(FEDATTN_SOURCE_DIR) / "data" / "wdbc.csv").string(); }

TEST(SimulateTest, ThreeSitesCompleteAndEachReportsItsEpsilon) {
  TempDir dir;
  const std::filesystem::path out = dir.path() / "run";
  const CommandResult result =
      Simulate({"--job", WriteJob(dir.path(), 2, 3).string(), "--data", Wdbc(), "--sites", "3", "--split", "label",
                "--label-column", "diagnosis", "--alpha", "1", "--seed", "7", "--out", out.string()});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("completed, 2/2 rounds committed, 3 sites, 1 thread(s) per site"), std::string::npos)
      << result.output;
  // Progress lines on stderr, one per round.
  EXPECT_NE(result.output.find("round 1 committed: 3/3 sites contributed"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("round 2 committed: 3/3 sites contributed"), std::string::npos) << result.output;

  // Each site's row: name, rows, releases, refusals, epsilon of the job, epsilon in total.
  int sites_seen = 0;
  int64_t rows = 0;
  for (absl::string_view line : absl::StrSplit(result.output, '\n')) {
    if (!absl::ConsumePrefix(&line, "site-")) continue;
    const std::vector<std::string> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    ASSERT_EQ(fields.size(), 6u) << line;
    ++sites_seen;
    rows += std::stoll(fields[1]);
    EXPECT_EQ(fields[2], "2") << "releases: " << line;
    EXPECT_EQ(fields[3], "0") << "refusals: " << line;
    const double job_epsilon = std::stod(fields[4]);
    EXPECT_TRUE(std::isfinite(job_epsilon) && job_epsilon > 0) << line;
    EXPECT_DOUBLE_EQ(std::stod(fields[5]), job_epsilon) << "a fresh site has spent only this job: " << line;
  }
  EXPECT_EQ(sites_seen, 3) << result.output;
  EXPECT_EQ(rows, 569) << "WDBC's rows, each at exactly one site";
  // --out is kept: every site's own ledger is there for `fedattn audit`.
  for (const char* site : {"site-1", "site-2", "site-3"}) {
    EXPECT_TRUE(std::filesystem::exists(out / "sites" / site / "ledger.db")) << site;
  }
}

TEST(SimulateTest, JobAboveTheSitesCapFailsWithExitOne) {
  TempDir dir;
  const CommandResult result = Simulate({"--job", WriteJob(dir.path(), 1, 2, "target_epsilon: 6.0").string(),
                                         "--data", Wdbc(), "--sites", "2", "--epsilon-max", "3"});
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("failed, 0/1 rounds committed"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("above this site's policy.epsilon_max 3"), std::string::npos) << result.output;
  // Nothing released: every site's epsilon is 0, in this job and in total.
  int sites_seen = 0;
  for (absl::string_view line : absl::StrSplit(result.output, '\n')) {
    if (!absl::ConsumePrefix(&line, "site-")) continue;
    const std::vector<std::string> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    ASSERT_EQ(fields.size(), 6u) << line;
    ++sites_seen;
    EXPECT_EQ(fields[2], "0") << line;
    EXPECT_EQ(fields[4], "0.0000") << line;
    EXPECT_EQ(fields[5], "0.0000") << line;
  }
  EXPECT_EQ(sites_seen, 2) << result.output;
}

TEST(SimulateTest, MoreMinSitesThanSitesIsRefusedBeforeAnythingRuns) {
  TempDir dir;
  const CommandResult result =
      Simulate({"--job", WriteJob(dir.path(), 1, 3).string(), "--data", Wdbc(), "--sites", "2"});
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find("job.sites.min_sites is 3 but the simulation has only 2 site(s)"), std::string::npos)
      << result.output;
}

TEST(SimulateTest, NonEmptyOutDirectoryIsRefused) {
  TempDir dir;
  std::ofstream(dir.path() / "something") << "x";
  const CommandResult result = Simulate({"--job", WriteJob(dir.path(), 1, 2).string(), "--data", Wdbc(), "--sites",
                                         "2", "--out", dir.path().string()});
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find("is not empty"), std::string::npos) << result.output;
}

TEST(SimulateTest, LabelSplitWithoutLabelColumnNamesTheOption) {
  TempDir dir;
  const CommandResult result = Simulate({"--job", WriteJob(dir.path(), 1, 2).string(), "--data", Wdbc(), "--sites",
                                         "2", "--split", "label"});
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find("label"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace fedattn::testing
