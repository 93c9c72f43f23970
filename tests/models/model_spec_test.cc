#include "fedattn/models/model_spec.h"

#include "fedattn/common/status_macros.h"
#include "fedattn/config/yaml_reader.h"
#include "fedattn/models/transformer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/temp_dir.h"

namespace fedattn::models {
namespace {

using ::testing::HasSubstr;

const std::filesystem::path kConfigs = FEDATTN_SOURCE_DIR "/configs/models";

absl::StatusOr<ModelOptions> Parse(const std::string& yaml) {
  ASSIGN_OR_RETURN(config::YamlDocument doc, config::YamlDocument::Parse(yaml, "model.yaml"));
  ModelOptions options;
  {
    config::MapReader root = doc.Root();
    config::MapReader model = root.Map("model");
    ReadModelOptions(model, &options);
  }
  RETURN_IF_ERROR(doc.Finish());
  RETURN_IF_ERROR(options.Validate());
  return options;
}

TEST(ModelSpecTest, LoadsEveryModelConfig) {
  auto tabular = LoadModelOptions(kConfigs / "ft_transformer_small.yaml");
  ASSERT_TRUE(tabular.ok()) << tabular.status();
  EXPECT_EQ(tabular->kind(), ModelKind::kTabularTransformer);
  EXPECT_TRUE(tabular->tabular().encoder().norm_first());
  auto regression = LoadModelOptions(kConfigs / "ft_transformer_regression.yaml");
  ASSERT_TRUE(regression.ok()) << regression.status();
  EXPECT_TRUE(regression->tabular().regression());
  EXPECT_EQ(regression->tabular().num_outputs(), 1);
  auto text = LoadModelOptions(kConfigs / "text_reference.yaml");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(text->text().vocab_size(), 8000);
  EXPECT_EQ(text->text().encoder().ffn_dim(), 512);
  auto lora = LoadModelOptions(kConfigs / "bert_lora.yaml");
  ASSERT_TRUE(lora.ok()) << lora.status();
  EXPECT_EQ(lora->trainable(), Trainable::kLora);
  EXPECT_EQ(lora->lora().rank(), 8);
  EXPECT_EQ(lora->pretrained(), "/opt/models/bert-tiny");
}

TEST(ModelSpecTest, ErrorsNameFileLineAndKey) {
  auto bad = Parse("model:\n  kind: text_classifier\n  d_model: 30\n  num_heads: 4\n  colour: red\n");
  EXPECT_THAT(bad.status().message(), HasSubstr("model.yaml:5: model.colour: unknown key"));
  bad = Parse("model:\n  kind: text_classifier\n  d_model: 30\n  num_heads: 4\n");
  EXPECT_THAT(bad.status().message(), HasSubstr("d_model (30) must be a multiple of num_heads (4)"));
  bad = Parse("model:\n  kind: tabular_transformer\n  trainable: lora\n");
  EXPECT_THAT(bad.status().message(), HasSubstr("trainable: lora needs lora.rank > 0"));
  bad = Parse("model:\n  kind: text_classifier\n  lora: {rank: 4, targets: [query, gate]}\n");
  EXPECT_THAT(bad.status().message(), HasSubstr("unknown target 'gate'"));
  bad = Parse("model:\n  kind: text_classifier\n  pretrained: /x\n  d_model: 64\n");
  EXPECT_THAT(bad.status().message(), HasSubstr("model.d_model: comes from the pretrained config.json"));
  bad = Parse("model:\n  kind: lstm\n");
  EXPECT_THAT(bad.status().message(), HasSubstr("model.yaml:2: model.kind"));
}

TEST(ModelSpecTest, TrainableSelectsTensors) {
  ModelOptions options;
  options.text().vocab_size(50).max_positions(16).encoder(EncoderOptions().d_model(8).num_heads(2).ffn_dim(16).num_layers(2));
  options.lora(LoraOptions().rank(2).targets({"query", "value", "ffn"}));
  auto full = BuildModelSpec(options);
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(full->NumTrainable(), full->NumParameters());
  auto lora = BuildModelSpec(ModelOptions(options).trainable(Trainable::kLora));
  ASSERT_TRUE(lora.ok());
  for (const TensorSpec& t : lora->TrainableTensors()) {
    EXPECT_TRUE(t.name.find("lora_") != std::string::npos || t.name.rfind("classifier", 0) == 0 ||
                t.name.rfind("pooler", 0) == 0)
        << t.name;
  }
  // 2 layers x (query, value: 2 x 2*8) + ffn (2*8 + 16*2 + 2*16 + 8*2), plus pooler and classifier.
  EXPECT_EQ(lora->NumTrainable(), 2 * (4 * 16 + 16 + 32 + 32 + 16) + (8 * 8 + 8) + (2 * 8 + 2));
  auto head = BuildModelSpec(ModelOptions(options).trainable(Trainable::kHead));
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->NumTrainable(), (8 * 8 + 8) + (2 * 8 + 2));
}

TEST(ModelSpecTest, TabularNeedsFeatures) {
  ModelOptions options;
  options.kind(ModelKind::kTabularTransformer);
  EXPECT_THAT(BuildModelSpec(options).status().message(), HasSubstr("needs at least one feature"));
}

// The LibTorch-free description and the LibTorch module agree on every name, shape and flag.
TEST(ModelSpecTest, SpecMatchesModules) {
  ModelOptions text;
  text.text().vocab_size(40).max_positions(12).encoder(
      EncoderOptions().d_model(8).num_heads(2).ffn_dim(12).num_layers(2).norm_first(true));
  text.lora(LoraOptions().rank(2).targets({"query", "key", "value", "attention_output", "ffn"}));
  ModelOptions tabular;
  tabular.kind(ModelKind::kTabularTransformer);
  tabular.tabular().num_numeric(3).cardinalities({2, 4}).num_classes(3);
  for (ModelOptions options : {text, ModelOptions(text).trainable(Trainable::kLora), tabular}) {
    auto spec = BuildModelSpec(options);
    ASSERT_TRUE(spec.ok()) << spec.status();
    auto model = BuildModel(options, 1);
    ASSERT_TRUE(model.ok()) << model.status();
    auto params = (*model)->named_parameters();
    ASSERT_EQ(params.size(), spec->tensors.size());
    for (size_t i = 0; i < params.size(); ++i) {
      EXPECT_EQ(params[i].key(), spec->tensors[i].name);
      EXPECT_EQ(params[i].value().sizes().vec(), spec->tensors[i].shape);
      EXPECT_EQ(params[i].value().requires_grad(), spec->tensors[i].trainable) << params[i].key();
    }
  }
}

}  // namespace
}  // namespace fedattn::models
