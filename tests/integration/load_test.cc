// Load (issue 9, item 5): 100 virtual sites against one coordinator, SecAgg+ and DP-SGD on, for
// five rounds of a tiny model, through `fedattn-simulate --resources` (real agents, real gRPC
// over mutual TLS on 127.0.0.1, the real round engine; one process). Every round must commit with
// all 100 sites, and the process's resident memory and open file descriptors, sampled after each
// round, must stay flat: a per-site leak of one descriptor or a few hundred KB per round would
// show as 100 descriptors or tens of MB per round. Round 1 is left out of the comparison (it
// warms up allocator arenas, thread pools and LibTorch).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "util/subprocess.h"
#include "util/temp_dir.h"

namespace fedattn::testing {
namespace {

constexpr int kSites = 100;
constexpr int kRounds = 5;

std::filesystem::path WriteJob(const std::filesystem::path& dir) {
  const std::filesystem::path source(FEDATTN_SOURCE_DIR);
  const std::filesystem::path path = dir / "load.yaml";
  std::ofstream(path) << absl::StrCat(
      "job:\n  name: load\n  seed: 3\n",
      "  model:\n    kind: tabular_transformer\n    task: classification\n    d_model: 8\n    num_layers: 1\n"
      "    num_heads: 2\n    ffn_dim: 16\n    dropout: 0.0\n    attention_dropout: 0.0\n",
      "  data:\n    kind: tabular\n    schema: ", (source / "configs/data/wdbc.schema.yaml").string(),
      "\n    validation_fraction: 0.2\n",
      "  rounds: ", kRounds, "\n  sites:\n    fraction: 1.0\n    min_sites: ", kSites, "\n",
      "  strategy:\n    name: fedavg\n",
      "  local:\n    epochs: 1\n    batch_size: 4\n    lr: 3.0e-3\n    threads: 1\n",
      "  privacy:\n    sample_level:\n      enabled: true\n      noise_multiplier: 1.0\n"
      "      max_grad_norm: 1.0\n      delta: 1.0e-5\n",
      "  secagg:\n    enabled: true\n    max_dropout_fraction: 0.05\n",
      "  deadlines:\n    train_s: 300\n    stage_s: 120\n",
      "  evaluation:\n    every: 0\n");
  return path;
}

struct Sample {
  double rss_mb = 0;
  int64_t fds = 0;
};

TEST(LoadTest, HundredSitesWithSecAggKeepMemoryAndDescriptorsFlat) {
  TempDir dir;
  const std::string data = (std::filesystem::path(FEDATTN_SOURCE_DIR) / "data" / "wdbc.csv").string();
  const CommandResult result =
      RunCommand({FEDATTN_SIMULATE_BIN, "--job", WriteJob(dir.path()).string(), "--data", data, "--sites",
                  std::to_string(kSites), "--resources", "--log-level", "error", "--out", (dir.path() / "run").string()},
                 absl::Seconds(1500));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  // Nothing went wrong on the way either (--log-level error prints only errors): no site's
  // last SecAgg poll, arriving after its round committed, is reported as a failure.
  EXPECT_FALSE(absl::StrContains(result.output, "[error]")) << result.output;
  EXPECT_TRUE(absl::StrContains(result.output, absl::StrCat("completed, ", kRounds, "/", kRounds,
                                                            " rounds committed, ", kSites, " sites")))
      << result.output;

  // "resources after round 3: rss_mb 312.5 fds 240"
  std::map<int, Sample> samples;
  for (absl::string_view line : absl::StrSplit(result.output, '\n')) {
    if (absl::StartsWith(line, "round ") && absl::StrContains(line, " committed: ")) {
      EXPECT_TRUE(absl::StrContains(line, absl::StrCat(kSites, "/", kSites, " sites contributed"))) << line;
    }
    if (!absl::ConsumePrefix(&line, "resources after round ")) continue;
    const std::vector<std::string> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    ASSERT_EQ(fields.size(), 5u) << line;
    samples[std::stoi(fields[0])] = Sample{std::stod(fields[2]), std::stoll(fields[4])};
  }
  ASSERT_EQ(samples.size(), static_cast<size_t>(kRounds)) << result.output;
  std::string table;
  for (const auto& [round, sample] : samples) {
    table += absl::StrCat("round ", round, ": rss ", sample.rss_mb, " MB, ", sample.fds, " fds\n");
  }
  std::cout << table;  // the figures, for the test log

  const Sample& second = samples.at(2);
  for (int round = 3; round <= kRounds; ++round) {
    const Sample& later = samples.at(round);
    // Descriptors: the same set every round, give or take a few in flight (a ledger or spool
    // file being written, a connection being replaced); a leak per site would add ~100.
    EXPECT_LE(later.fds, second.fds + 10) << table;
    // Memory: within 15 % (+32 MB of allocator slack) of round 2; a leak of 300 KB per site per
    // round would be 30 MB per round, 90 MB by round 5.
    EXPECT_LE(later.rss_mb, second.rss_mb * 1.15 + 32) << table;
  }
}

}  // namespace
}  // namespace fedattn::testing
