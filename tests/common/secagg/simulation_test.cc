#include "fedattn/secagg/simulation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fedattn/secagg/encoding.h"
#include "fedattn/secagg/masking.h"

namespace fedattn::secagg {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kSeed = 2024;

SimulationOptions Options(uint32_t n, uint32_t k, uint64_t d) {
  SimulationOptions options;
  options.config.job_id = "sim-job";
  options.config.round = 11;
  for (uint32_t i = 0; i < n; ++i) options.config.sites.push_back(3 * i + 1);
  options.config.vector_length = d;
  options.config.degree = k;
  options.config.max_abort_probability = 1.0;
  options.config.graph_seed[7] = 1;
  options.seed = kSeed;
  return options;
}

InputFn TestInput() {
  return [](SiteId site, std::span<uint32_t> out) { return FillTestInput(kSeed, site, 0, out); };
}

std::vector<uint32_t> ExpectedSum(const std::vector<SiteId>& sites, size_t d) {
  std::vector<uint32_t> sum(d, 0), x(d);
  for (SiteId site : sites) {
    EXPECT_TRUE(FillTestInput(kSeed, site, 0, x).ok());
    AddWords(sum, x);
  }
  return sum;
}

// (graph degree, dropout fraction, stage at which sites drop)
using Case = std::tuple<uint32_t, double, Stage>;
class SimulationSumTest : public ::testing::TestWithParam<Case> {};

TEST_P(SimulationSumTest, DecodedSumEqualsSumOfQuantizedInputs) {
  const auto [k, fraction, stage] = GetParam();
  constexpr uint32_t kN = 30;
  constexpr uint64_t kD = 1000;
  SimulationOptions options = Options(kN, k, kD);
  const uint32_t drops = static_cast<uint32_t>(fraction * kN + 0.5);
  for (uint32_t i = 0; i < drops; ++i) options.dropouts[options.config.sites[(7 * i + 2) % kN]] = stage;
  auto report = RunSimulation(options, TestInput());
  ASSERT_TRUE(report.ok()) << report.status();
  std::vector<SiteId> contributors;
  for (SiteId site : options.config.sites) {
    auto it = options.dropouts.find(site);
    if (it == options.dropouts.end() || it->second == Stage::kUnmask) contributors.push_back(site);
  }
  EXPECT_EQ(report->result.contributors, contributors);
  EXPECT_EQ(report->result.sum, ExpectedSum(contributors, kD));
  EXPECT_EQ(report->result.dropouts.size(), drops);
}

INSTANTIATE_TEST_SUITE_P(
    DropoutsAtEachStage, SimulationSumTest,
    ::testing::Combine(::testing::Values(0u /* complete */, 14u /* sparse */),
                       ::testing::Values(0.0, 0.1, 0.3),
                       ::testing::Values(Stage::kAdvertiseKeys, Stage::kShareKeys,
                                         Stage::kMaskedInput, Stage::kUnmask)));

TEST(SimulationTest, TooManyDropoutsAbortWithNothingRevealed) {
  for (Stage stage : {Stage::kAdvertiseKeys, Stage::kShareKeys, Stage::kMaskedInput,
                      Stage::kUnmask}) {
    SimulationOptions options = Options(10, 0, 16);  // t = 6
    for (int i = 0; i < 5; ++i) options.dropouts[options.config.sites[i]] = stage;
    auto report = RunSimulation(options, TestInput());
    EXPECT_EQ(report.status().code(), absl::StatusCode::kFailedPrecondition) << StageName(stage);
    EXPECT_THAT(report.status().message(), HasSubstr("aborted"));
  }
}

TEST(SimulationTest, EncodedFloatsAggregateExactly) {
  constexpr uint32_t kN = 12;
  constexpr uint64_t kD = 500;
  SimulationOptions options = Options(kN, 6, kD);
  options.dropouts[options.config.sites[3]] = Stage::kMaskedInput;
  EncodingOptions encoding;
  encoding.clip = 0.5f;
  encoding.max_sites = kN;
  auto encoder = Encoder::Create(encoding);
  ASSERT_TRUE(encoder.ok());
  std::map<SiteId, std::vector<uint32_t>> quantized;
  auto input = [&](SiteId site, std::span<uint32_t> out) -> absl::Status {
    std::vector<float> x(kD);
    for (size_t i = 0; i < kD; ++i) x[i] = 0.001f * static_cast<float>(site) - 0.0003f * i;
    crypto::DeterministicRandom random(site);
    if (absl::Status s = encoder->Encode(x, out, random); !s.ok()) return s;
    quantized[site].assign(out.begin(), out.end());
    return absl::OkStatus();
  };
  auto report = RunSimulation(options, input);
  ASSERT_TRUE(report.ok()) << report.status();
  std::vector<uint32_t> expected(kD, 0);
  for (const auto& [site, q] : quantized) AddWords(expected, q);
  EXPECT_EQ(report->result.sum, expected);  // exact, as integers mod 2^32
  std::vector<float> decoded(kD);
  encoder->Decode(report->result.sum, decoded);
  double want = 0;
  for (SiteId site : report->result.contributors) want += 0.001 * site;
  EXPECT_NEAR(decoded[0], want, kN / encoder->scale());
}

TEST(SimulationTest, DeterministicReportUnderAFixedSeed) {
  SimulationOptions options = Options(8, 0, 64);
  options.dropouts[options.config.sites[2]] = Stage::kMaskedInput;
  auto a = RunSimulation(options, TestInput());
  auto b = RunSimulation(options, TestInput());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->result.sum, b->result.sum);
  EXPECT_EQ(a->client_sent_bytes_max, b->client_sent_bytes_max);
  EXPECT_GT(a->client_sent_bytes_max, 64u * 4);
}

}  // namespace
}  // namespace fedattn::secagg
