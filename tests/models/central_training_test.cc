#include "fedattn/models/central_training.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
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
