// `mpirun -np 2 fedattn-agent train`: data-parallel central training over MPI (CPU) gives the
// model one process gives, with and without DP-SGD; a rank killed mid-training ends the run with
// a clear error on the survivor instead of a hang. Skipped where mpirun is missing.
#include <stdlib.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "fedattn/tensor/safetensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/subprocess.h"
#include "util/temp_dir.h"

namespace fedattn {
namespace {

using ::testing::HasSubstr;

const std::filesystem::path kSource = FEDATTN_SOURCE_DIR;
const std::string kAgent = FEDATTN_AGENT_BIN;

std::string Mpirun() {
  for (const char* path : {"/usr/bin/mpirun", "/usr/local/bin/mpirun"}) {
    if (access(path, X_OK) == 0) return path;
  }
  return "";
}

class MpiTrainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mpirun_ = Mpirun();
    if (mpirun_.empty()) GTEST_SKIP() << "mpirun not installed (openmpi-bin)";
    // Containers: shared memory and loopback only, more ranks than cores, and root allowed.
    setenv("OMPI_MCA_btl", "self,vader", 1);
    setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMP_WAIT_POLICY", "passive", 1);
    std::ofstream(dir_ / "model.yaml") << "model:\n  kind: tabular_transformer\n  task: classification\n"
                                          "  d_model: 8\n  num_layers: 1\n  num_heads: 2\n  ffn_dim: 16\n"
                                          "  dropout: 0\n  attention_dropout: 0\n  norm: pre\n";
  }

  // A train config over WDBC (456 training rows): 2 epochs of batch 32, optionally DP-SGD.
  std::filesystem::path Config(const std::string& name, const std::string& output, const std::string& privacy = "") {
    std::ofstream(dir_ / name) << absl::StrCat(
        "train:\n  model: model.yaml\n  data:\n    path: ", (kSource / "data/wdbc.csv").string(),
        "\n    schema: ", (kSource / "configs/data/wdbc.schema.yaml").string(),
        "\n  trainer: {epochs: 2, batch_size: 32, threads: 1, log_every: 0, seed: 5, max_grad_norm: 0.5, "
        "optimizer: {lr: 5.0e-3, eps: 1.0e-4}}\n  output: ", output, "\n", privacy.empty() ? "" : "  privacy: " + privacy + "\n");
    return dir_ / name;
  }

  std::vector<std::string> Ranks(int n, std::vector<std::string> args, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {mpirun_, "-np", std::to_string(n), "--oversubscribe"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(kAgent);
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  void ExpectSameModel(const std::filesystem::path& a, const std::filesystem::path& b) {
    auto first = LoadSafetensors(a);
    auto second = LoadSafetensors(b);
    ASSERT_TRUE(first.ok()) << first.status();
    ASSERT_TRUE(second.ok()) << second.status();
    ASSERT_EQ(first->tensors.size(), second->tensors.size());
    for (size_t t = 0; t < first->tensors.size(); ++t) {
      const TensorBuffer& x = first->tensors[t];
      const TensorBuffer& y = second->tensors[t];
      ASSERT_EQ(x.name, y.name);
      ASSERT_EQ(x.data.size(), y.data.size());
      if (x.dtype != DType::kF32) continue;
      const auto* p = reinterpret_cast<const float*>(x.data.data());
      const auto* q = reinterpret_cast<const float*>(y.data.data());
      for (size_t i = 0; i < x.data.size() / sizeof(float); ++i) {
        ASSERT_NEAR(p[i], q[i], 1e-4 + 1e-4 * std::abs(p[i])) << x.name << "[" << i << "]";
      }
    }
  }

  std::string mpirun_;
  testing::TempDir dir_;
};

TEST_F(MpiTrainTest, TwoRanksGiveTheModelOfOneProcess) {
  const auto single = testing::RunCommand({kAgent, "train", "--config", Config("one.yaml", "one.safetensors").string()},
                                          absl::Seconds(120));
  ASSERT_EQ(single.exit_code, 0) << single.output;
  const auto two = testing::RunCommand(Ranks(2, {"train", "--config", Config("two.yaml", "two.safetensors").string(),
                                                 "--collective-timeout", "60"}),
                                       absl::Seconds(180));
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_THAT(two.output, HasSubstr("data-parallel over 2 ranks (mpi)"));
  ExpectSameModel(dir_ / "one.safetensors", dir_ / "two.safetensors");
}

TEST_F(MpiTrainTest, TwoRanksGiveTheModelOfOneProcessWithDpSgd) {
  // A test-only seed makes rank 0's sampling and noise those of the single process.
  const std::string privacy = "{noise_multiplier: 1.0, max_grad_norm: 0.5, delta: 1.0e-5, test_seed: 9}";
  const auto single = testing::RunCommand(
      {kAgent, "train", "--config", Config("one.yaml", "one.safetensors", privacy).string()}, absl::Seconds(120));
  ASSERT_EQ(single.exit_code, 0) << single.output;
  const auto two = testing::RunCommand(
      Ranks(2, {"train", "--config", Config("two.yaml", "two.safetensors", privacy).string()}), absl::Seconds(180));
  ASSERT_EQ(two.exit_code, 0) << two.output;
  // The same site-level accounting (q = 32/456, the whole training split) and the same epsilon.
  EXPECT_THAT(two.output, HasSubstr("q = 0.07018"));
  const auto epsilon = [](const std::string& out) { return out.substr(out.find("privacy: epsilon"), 40); };
  EXPECT_EQ(epsilon(single.output), epsilon(two.output));
  ExpectSameModel(dir_ / "one.safetensors", dir_ / "two.safetensors");
}

TEST_F(MpiTrainTest, AKilledRankEndsTheRunWithAClearErrorOnTheOthers) {
  // Rank 1 dies (SIGKILL) at its 3rd all-reduce; with --enable-recovery mpirun lets rank 0 live
  // to see the missing peer: its collective times out (5 s) and rank 0 fails with the reason.
  const auto run = testing::RunCommand(
      Ranks(2, {"train", "--config", Config("kill.yaml", "kill.safetensors").string(), "--collective-timeout", "5"},
            {"--enable-recovery", "-x", "FEDATTN_TEST_KILL_AT_ALLREDUCE=1:3"}),
      absl::Seconds(120));
  // No hang. (mpirun's own exit status is 0 under --enable-recovery whatever the ranks returned,
  // so the outcome is read from the output.)
  EXPECT_NE(run.exit_code, -1) << "timed out (hang): " << run.output;
  EXPECT_THAT(run.output, HasSubstr("fedattn-agent train (rank 0): MPI all-reduce on rank 0 of 2: no completion within 5s"));
  EXPECT_THAT(run.output, HasSubstr("a rank died or stalled"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "kill.safetensors"));
}

}  // namespace
}  // namespace fedattn
