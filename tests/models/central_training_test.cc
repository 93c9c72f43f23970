#include "fedattn/models/central_training.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "fedattn/tensor/safetensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/temp_dir.h"

namespace fedattn::models {
namespace {

using ::testing::HasSubstr;

const std::filesystem::path kSource = FEDATTN_SOURCE_DIR;

TEST(CentralTrainingTest, LoadsEveryTrainConfig) {
  auto wdbc = LoadTrainConfig(kSource / "configs/train/wdbc.yaml");
  ASSERT_TRUE(wdbc.ok()) << wdbc.status();
  EXPECT_EQ(wdbc->model.tabular().num_numeric(), 30);
  EXPECT_EQ(wdbc->trainer.positive_class(), 1);  // M
  EXPECT_EQ(wdbc->trainer.decay(), LrDecay::kCosine);
  auto exam = LoadTrainConfig(kSource / "configs/train/exam_regression.yaml");
  ASSERT_TRUE(exam.ok()) << exam.status();
  EXPECT_TRUE(exam->model.tabular().regression());
  EXPECT_EQ(exam->model.tabular().cardinalities(), (std::vector<int64_t>{3, 3, 3, 2, 2}));
  auto nmes = LoadTrainConfig(kSource / "configs/train/nmes1988.yaml");
  ASSERT_TRUE(nmes.ok()) << nmes.status();
  EXPECT_EQ(nmes->model.tabular().num_classes(), 3);
  auto notes = LoadTrainConfig(kSource / "configs/train/notes_bert_lora.yaml");
  ASSERT_TRUE(notes.ok()) << notes.status();
  EXPECT_EQ(notes->data_kind, DataKind::kText);
  EXPECT_EQ(notes->text.text_column, "note");
  EXPECT_EQ(notes->model.trainable(), Trainable::kLora);
  auto wdbc_dp = LoadTrainConfig(kSource / "configs/train/wdbc_dp.yaml");
  ASSERT_TRUE(wdbc_dp.ok()) << wdbc_dp.status();
  ASSERT_TRUE(wdbc_dp->privacy.has_value());
  EXPECT_EQ(wdbc_dp->privacy->target_epsilon, 3.0);
  EXPECT_EQ(wdbc_dp->privacy->delta, 1e-5);
  EXPECT_EQ(wdbc_dp->privacy->max_grad_norm, 1.0);
  EXPECT_FALSE(wdbc->privacy.has_value());
}

class CentralTrainingRunTest : public ::testing::Test {
 protected:
  std::filesystem::path Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return dir_ / name;
  }
  testing::TempDir dir_;
};

TEST_F(CentralTrainingRunTest, TrainsWdbcBrieflyAndSaves) {
  const auto config = Write("train.yaml", absl::StrCat(R"(train:
  model: )", (kSource / "configs/models/ft_transformer_small.yaml").string(), R"(
  data:
    path: )", (kSource / "data/wdbc.csv").string(), R"(
    schema: )", (kSource / "configs/data/wdbc.schema.yaml").string(), R"(
  trainer: {epochs: 3, batch_size: 32, threads: 1, log_every: 5, optimizer: {lr: 2.0e-3}}
  output: model.safetensors
)"));
  std::ostringstream out;
  auto result = RunCentralTraining(config, out);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->train_examples + result->validation_examples, 569);
  EXPECT_EQ(result->validation_examples, 113);  // round(0.2 * 212) + round(0.2 * 357)
  EXPECT_GT(result->train.validation.accuracy, 0.85) << out.str();
  EXPECT_THAT(out.str(), HasSubstr("training tabular_transformer"));
  EXPECT_THAT(out.str(), HasSubstr("epoch 3/3 train loss"));
  auto saved = LoadSafetensors(dir_ / "model.safetensors");
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(saved->metadata.at("fedattn.model_kind"), "tabular_transformer");
}

TEST_F(CentralTrainingRunTest, TrainsATextModelFromJsonl) {
  Write("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nfever\ncough\nfine\nwell\nvery\n");
  std::string notes;
  for (int i = 0; i < 40; ++i) {
    notes += i % 2 ? R"({"note": "very fever cough", "label": "sick"})" "\n" : R"({"note": "fine very well", "label": "ok"})" "\n";
  }
  Write("notes.jsonl", notes);
  Write("model.yaml", "model:\n  kind: text_classifier\n  vocab_size: 9\n  max_positions: 16\n  d_model: 8\n"
                      "  num_heads: 2\n  ffn_dim: 16\n  num_layers: 1\n  dropout: 0\n  attention_dropout: 0\n");
  const auto config = Write("train.yaml", R"(train:
  model: model.yaml
  data: {kind: text, path: notes.jsonl, vocab: vocab.txt, text_column: note, classes: [ok, sick], max_length: 8}
  trainer: {epochs: 20, batch_size: 8, threads: 1, log_every: 0, optimizer: {lr: 5.0e-3}}
)");
  std::ostringstream out;
  auto result = RunCentralTraining(config, out);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->train.validation.accuracy, 1.0) << out.str();
}

std::string WdbcConfig(absl::string_view privacy) {
  return absl::StrCat(R"(train:
  model: )", (kSource / "configs/models/ft_transformer_small.yaml").string(), R"(
  data:
    path: )", (kSource / "data/wdbc.csv").string(), R"(
    schema: )", (kSource / "configs/data/wdbc.schema.yaml").string(), R"(
  trainer: {epochs: 2, batch_size: 64, threads: 1, log_every: 0, optimizer: {lr: 5.0e-3}}
  privacy: )", privacy, "\n");
}

TEST_F(CentralTrainingRunTest, TrainsWithDpSgdAndReportsTheEpsilonSpent) {
  std::ostringstream out;
  auto result = RunCentralTraining(Write("train.yaml", WdbcConfig("{noise_multiplier: 1.5, delta: 1.0e-5}")), out);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_TRUE(result->train.dp_sgd.has_value());
  ASSERT_TRUE(result->privacy.has_value());
  const DpSgdSummary& dp = *result->train.dp_sgd;
  EXPECT_DOUBLE_EQ(dp.sampling_rate, 64.0 / 456);
  EXPECT_EQ(dp.steps, 2 * 7);  // epochs * round(1/q)
  EXPECT_EQ(dp.noise_multiplier, 1.5);
  auto expected = dp::ComputeEpsilon(64.0 / 456, 1.5, 14, 1e-5);
  ASSERT_TRUE(expected.ok());
  EXPECT_DOUBLE_EQ(result->privacy->epsilon, expected->epsilon);
  EXPECT_THAT(out.str(), HasSubstr("privacy: DP-SGD with Poisson sampling q = 0.14035"));
  EXPECT_THAT(out.str(), HasSubstr(absl::StrFormat("privacy: epsilon %.4f at delta 1e-05", expected->epsilon)));
}

TEST_F(CentralTrainingRunTest, CalibratesNoiseForATargetEpsilon) {
  std::ostringstream out;
  auto result = RunCentralTraining(
      Write("train.yaml", WdbcConfig("{target_epsilon: 2.0, delta: 1.0e-5, expected_batch_size: 32, steps: 5}")), out);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->train.dp_sgd->steps, 5);
  EXPECT_DOUBLE_EQ(result->train.dp_sgd->sampling_rate, 32.0 / 456);
  EXPECT_LE(result->privacy->epsilon, 2.0);
  EXPECT_GT(result->privacy->epsilon, 2.0 * (1 - 1e-4));
  EXPECT_THAT(out.str(), HasSubstr("calibrated for epsilon 2"));
}

TEST_F(CentralTrainingRunTest, PrivacyErrors) {
  std::ostringstream out;
  for (const char* privacy : {"{delta: 1.0e-5}", "{noise_multiplier: 1, target_epsilon: 2}",
                              "{noise_multiplier: 1, delta: 0}", "{noise_multiplier: 1, max_grad_norm: 0}",
                              "{noise_multiplier: 1, sampling_rate: 0.1, expected_batch_size: 8}"}) {
    auto result = RunCentralTraining(Write("train.yaml", WdbcConfig(privacy)), out);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << privacy;
    EXPECT_THAT(result.status().message(), HasSubstr("privacy")) << privacy;
  }
  auto unknown = RunCentralTraining(Write("train.yaml", WdbcConfig("{noise_multiplier: 1, epsilon: 2}")), out);
  EXPECT_THAT(unknown.status().message(), HasSubstr("train.privacy.epsilon: unknown key"));
  auto too_big = RunCentralTraining(Write("train.yaml", WdbcConfig("{noise_multiplier: 1, expected_batch_size: 1000}")), out);
  EXPECT_THAT(too_big.status().message(), HasSubstr("not in (0, 1]"));
}

TEST_F(CentralTrainingRunTest, ConfigErrorsNameTheFile) {
  auto config = Write("train.yaml", "train:\n  model: nowhere.yaml\n  data: {path: x.csv, schema: s.yaml}\n");
  std::ostringstream out;
  EXPECT_THAT(RunCentralTraining(config, out).status().message(), HasSubstr("nowhere.yaml"));
  config = Write("train.yaml", absl::StrCat("train:\n  model: ", (kSource / "configs/models/text_reference.yaml").string(),
                                            "\n  data: {path: x.csv, schema: s.yaml}\n  trainer: {epoch: 3}\n"));
  EXPECT_THAT(RunCentralTraining(config, out).status().message(), HasSubstr("train.yaml:4: train.trainer.epoch: unknown key"));
}

}  // namespace
}  // namespace fedattn::models
