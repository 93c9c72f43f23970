#include "fedattn/models/checkpoint.h"

#include <fstream>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "fedattn/models/torch_bridge.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/temp_dir.h"

namespace fedattn::models {
namespace {

using ::testing::HasSubstr;

ModelOptions TinyText() {
  ModelOptions options;
  options.text().vocab_size(12).max_positions(10).encoder(
      EncoderOptions().d_model(8).num_heads(2).ffn_dim(16).num_layers(2));
  return options;
}

TensorBuffer Random(const std::string& name, std::vector<int64_t> shape) {
  auto buffer = ToBuffer(name, torch::randn(shape));
  EXPECT_TRUE(buffer.ok());
  return *buffer;
}

// A bert-tiny-like Hugging Face checkpoint (BertForSequenceClassification names), built here.
std::vector<TensorBuffer> HfBert(bool prefix, int64_t layers = 2) {
  const std::string p = prefix ? "bert." : "";
  std::vector<TensorBuffer> t = {
      Random(p + "embeddings.word_embeddings.weight", {12, 8}),
      Random(p + "embeddings.position_embeddings.weight", {10, 8}),
      Random(p + "embeddings.token_type_embeddings.weight", {2, 8}),
      Random(p + "embeddings.LayerNorm.gamma", {8}),
      Random(p + "embeddings.LayerNorm.beta", {8}),
      Random(p + "pooler.dense.weight", {8, 8}),
      Random(p + "pooler.dense.bias", {8}),
      Random("classifier.weight", {2, 8}),
      Random("classifier.bias", {2}),
  };
  for (int64_t i = 0; i < layers; ++i) {
    const std::string l = absl::StrCat(p, "encoder.layer.", i, ".");
    for (const char* part : {"query", "key", "value"}) {
      t.push_back(Random(absl::StrCat(l, "attention.self.", part, ".weight"), {8, 8}));
      t.push_back(Random(absl::StrCat(l, "attention.self.", part, ".bias"), {8}));
    }
    t.push_back(Random(l + "attention.output.dense.weight", {8, 8}));
    t.push_back(Random(l + "attention.output.dense.bias", {8}));
    t.push_back(Random(l + "attention.output.LayerNorm.weight", {8}));
    t.push_back(Random(l + "attention.output.LayerNorm.bias", {8}));
    t.push_back(Random(l + "intermediate.dense.weight", {16, 8}));
    t.push_back(Random(l + "intermediate.dense.bias", {16}));
    t.push_back(Random(l + "output.dense.weight", {8, 16}));
    t.push_back(Random(l + "output.dense.bias", {8}));
    t.push_back(Random(l + "output.LayerNorm.weight", {8}));
    t.push_back(Random(l + "output.LayerNorm.bias", {8}));
  }
  return t;
}

void WriteBertDir(const std::filesystem::path& dir, const std::vector<TensorBuffer>& tensors) {
  ASSERT_TRUE(SaveSafetensors(dir / "model.safetensors", tensors).ok());
  std::ofstream(dir / "config.json") << R"({"architectures": ["BertForSequenceClassification"],
    "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 16,
    "vocab_size": 12, "max_position_embeddings": 10, "type_vocab_size": 2, "hidden_act": "gelu",
    "layer_norm_eps": 1e-12, "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
    "pad_token_id": 0, "model_type": "bert"})";
  std::ofstream vocab(dir / "vocab.txt");
  for (const char* token : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "d", "e", "f", "g"}) {
    vocab << token << "\n";
  }
}

torch::Tensor Param(ModelImpl& model, const std::string& name) { return model.named_parameters()[name]; }

TEST(CheckpointTest, SaveAndLoadRoundTrip) {
  testing::TempDir dir;
  auto a = BuildModel(TinyText(), 1), b = BuildModel(TinyText(), 2);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(SaveModel(**a, dir / "m.safetensors").ok());
  auto file = LoadSafetensors(dir / "m.safetensors");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->metadata.at("fedattn.model_kind"), "text_classifier");
  ASSERT_TRUE(LoadModel(**b, dir / "m.safetensors").ok());
  for (const auto& p : (*a)->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), Param(**b, p.key()))) << p.key();
}

TEST(CheckpointTest, LoadErrorsNameTheTensor) {
  auto model = BuildModel(TinyText(), 1);
  ASSERT_TRUE(model.ok());
  auto tensors = ModuleTensors(**model);
  ASSERT_TRUE(tensors.ok());
  std::vector<TensorBuffer> missing(tensors->begin() + 1, tensors->end());
  EXPECT_THAT(LoadModuleTensors(**model, missing).message(), HasSubstr("tensor 'word_embeddings' is missing"));
  std::vector<TensorBuffer> misshaped = *tensors;
  misshaped[1] = Random("position_embeddings", {9, 8});
  EXPECT_THAT(LoadModuleTensors(**model, misshaped).message(),
              HasSubstr("tensor 'position_embeddings' has shape [9, 8], the model expects [10, 8]"));
  std::vector<TensorBuffer> unknown = *tensors;
  unknown.push_back(Random("extra", {1}));
  EXPECT_THAT(LoadModuleTensors(**model, unknown).message(), HasSubstr("tensor 'extra' is not a parameter"));
}

TEST(CheckpointTest, ImportsHuggingFaceBert) {
  for (bool prefix : {true, false}) {
    testing::TempDir dir;
    const std::vector<TensorBuffer> hf = HfBert(prefix);
    WriteBertDir(dir.path(), hf);
    ModelOptions options;
    options.pretrained(dir.path()).lora(LoraOptions().rank(2)).trainable(Trainable::kLora);
    auto model = ImportBert(options, 3);
    ASSERT_TRUE(model.ok()) << model.status();
    EXPECT_EQ((*model)->options().text().encoder().d_model(), 8);
    std::map<std::string, torch::Tensor> by_name;
    for (const TensorBuffer& t : hf) by_name[t.name] = *FromBuffer(t);
    const std::string p = prefix ? "bert." : "";
    EXPECT_TRUE(torch::equal(Param(**model, "word_embeddings"), by_name[p + "embeddings.word_embeddings.weight"]));
    EXPECT_TRUE(torch::equal(Param(**model, "embedding_norm_weight"), by_name[p + "embeddings.LayerNorm.gamma"]));
    EXPECT_TRUE(torch::equal(Param(**model, "classifier_bias"), by_name["classifier.bias"]));
    const std::string l = p + "encoder.layer.1.attention.self.";
    EXPECT_TRUE(torch::equal(Param(**model, "layers.1.qkv_weight"),
                             torch::cat({by_name[l + "query.weight"], by_name[l + "key.weight"], by_name[l + "value.weight"]})));
    EXPECT_TRUE(torch::equal(Param(**model, "layers.1.ffn_out_weight"), by_name[p + "encoder.layer.1.output.dense.weight"]));
    EXPECT_FALSE(Param(**model, "layers.1.qkv_weight").requires_grad());
    EXPECT_TRUE(Param(**model, "layers.1.lora_query_a").requires_grad());
  }
}

TEST(CheckpointTest, ImportErrorsNameTheHuggingFaceTensor) {
  testing::TempDir dir;
  std::vector<TensorBuffer> hf = HfBert(true);
  hf.erase(std::remove_if(hf.begin(), hf.end(),
                          [](const TensorBuffer& t) { return t.name == "bert.encoder.layer.1.output.dense.bias"; }),
           hf.end());
  WriteBertDir(dir.path(), hf);
  ModelOptions options;
  options.pretrained(dir.path());
  EXPECT_THAT(ImportBert(options, 0).status().message(), HasSubstr("missing tensor 'encoder.layer.1.output.dense.bias'"));
  hf = HfBert(true);
  for (TensorBuffer& t : hf) {
    if (t.name == "bert.encoder.layer.0.intermediate.dense.weight") t = Random(t.name, {8, 16});
  }
  WriteBertDir(dir.path(), hf);
  EXPECT_THAT(ImportBert(options, 0).status().message(),
              HasSubstr("tensor 'bert.encoder.layer.0.intermediate.dense.weight' is F32 [8, 16], expected F32 [16, 8]"));
  std::ofstream(dir / "config.json") << R"({"hidden_size": 8})";
  EXPECT_THAT(ImportBert(options, 0).status().message(), HasSubstr("config.json: missing \"vocab_size\""));
}

}  // namespace
}  // namespace fedattn::models
