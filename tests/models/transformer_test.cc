#include "fedattn/models/transformer.h"

#include <torch/torch.h>

#include "gtest/gtest.h"

namespace fedattn::models {
namespace {

ModelOptions TinyText(bool norm_first = false) {
  ModelOptions options;
  options.text().vocab_size(30).max_positions(16).num_classes(3).encoder(
      EncoderOptions().d_model(16).num_heads(4).ffn_dim(32).num_layers(2).norm_first(norm_first));
  return options;
}

Batch Text(torch::Tensor ids, torch::Tensor mask) {
  Batch batch;
  batch.input_ids = std::move(ids);
  batch.attention_mask = std::move(mask);
  return batch;
}

std::shared_ptr<ModelImpl> Build(const ModelOptions& options, uint64_t seed = 7) {
  auto model = BuildModel(options, seed);
  EXPECT_TRUE(model.ok()) << model.status();
  return *model;
}

TEST(TransformerTest, TextClassifierShapes) {
  auto model = Build(TinyText());
  Batch batch;
  batch.input_ids = torch::randint(0, 30, {3, 5}, torch::kInt64);
  batch.attention_mask = torch::ones({3, 5}, torch::kInt64);
  EXPECT_EQ(model->forward(batch).sizes().vec(), (std::vector<int64_t>{3, 3}));
}

// Padding tokens never change the [CLS] output: every attention ignores them (post- and pre-LN).
TEST(TransformerTest, PaddingDoesNotChangeClsOutput) {
  for (bool norm_first : {false, true}) {
    auto model = std::dynamic_pointer_cast<TextClassifierImpl>(Build(TinyText(norm_first)));
    ASSERT_NE(model, nullptr);
    model->eval();
    torch::NoGradGuard no_grad;
    const torch::Tensor ids = torch::tensor({{2, 7, 9, 11, 3}}, torch::kInt64);
    const torch::Tensor dense = model->encode(ids, torch::Tensor(), torch::ones({1, 5}, torch::kInt64));
    const torch::Tensor padded_ids = torch::cat({ids, torch::zeros({1, 6}, torch::kInt64)}, 1);
    const torch::Tensor mask = torch::cat({torch::ones({1, 5}), torch::zeros({1, 6})}, 1).to(torch::kInt64);
    // Pad with different garbage ids too: masked tokens are ignored whatever they are.
    const torch::Tensor noisy_ids = padded_ids.clone().index_put_({0, torch::indexing::Slice(5)}, 17);
    for (const torch::Tensor& input : {padded_ids, noisy_ids}) {
      const torch::Tensor padded = model->encode(input, torch::Tensor(), mask);
      EXPECT_TRUE(torch::allclose(dense.select(1, 0), padded.select(1, 0), 1e-5, 1e-6)) << norm_first;
      EXPECT_TRUE(torch::allclose(dense, padded.narrow(1, 0, 5), 1e-5, 1e-6));
    }
    // In a batch with a longer neighbour, the short row's logits stay the same.
    Batch alone = Text(ids, torch::ones({1, 5}, torch::kInt64));
    Batch both = Text(torch::cat({padded_ids, torch::randint(4, 30, {1, 11}, torch::kInt64)}, 0),
                      torch::cat({mask, torch::ones({1, 11}, torch::kInt64)}, 0));
    EXPECT_TRUE(torch::allclose(model->forward(alone)[0], model->forward(both)[0], 1e-5, 1e-6));
  }
}

// forward() computes only [CLS] in the last layer; it must agree with the full encoding.
TEST(TransformerTest, ClsOnlyLastLayerMatchesFullEncoding) {
  for (bool norm_first : {false, true}) {
    ModelOptions options = TinyText(norm_first);
    options.lora(LoraOptions().rank(2).targets({"query", "key", "value", "attention_output", "ffn"}));
    auto model = std::dynamic_pointer_cast<TextClassifierImpl>(Build(options));
    model->eval();
    torch::NoGradGuard no_grad;
    auto params = model->named_parameters();
    for (auto& p : params) {
      if (p.key().find("lora_") != std::string::npos) p.value().normal_(0, 0.1);  // adapters in play
    }
    Batch batch = Text(torch::randint(1, 30, {3, 6}, torch::kInt64),
                       torch::tensor({{1, 1, 1, 1, 1, 1}, {1, 1, 1, 0, 0, 0}, {1, 1, 1, 1, 1, 0}}, torch::kInt64));
    const torch::Tensor cls = model->encode(batch.input_ids, torch::Tensor(), batch.attention_mask).select(1, 0);
    const torch::Tensor pooled = torch::tanh(torch::addmm(params["pooler_bias"], cls, params["pooler_weight"].t()));
    const torch::Tensor expected = torch::addmm(params["classifier_bias"], pooled, params["classifier_weight"].t());
    EXPECT_TRUE(torch::allclose(model->forward(batch), expected, 1e-5, 1e-6)) << norm_first;
  }
}

TEST(TransformerTest, SameSeedSameModel) {
  auto a = Build(TinyText(), 3), b = Build(TinyText(), 3), c = Build(TinyText(), 4);
  auto pa = a->parameters(), pb = b->parameters(), pc = c->parameters();
  EXPECT_TRUE(torch::equal(pa[0], pb[0]));
  EXPECT_FALSE(torch::equal(pa[0], pc[0]));
}

// LoRA starts as the identity (B = 0): the adapted model computes what the base model does.
TEST(TransformerTest, FreshLoraAdaptersChangeNothing) {
  ModelOptions base = TinyText();
  ModelOptions adapted = TinyText();
  adapted.lora(LoraOptions().rank(2).targets({"query", "key", "value", "attention_output", "ffn"}));
  auto model_a = Build(base, 11), model_b = Build(adapted, 11);
  model_a->eval();
  model_b->eval();
  // Copy the shared weights (the adapted model drew extra random numbers for its A matrices).
  torch::NoGradGuard no_grad;
  auto params_b = model_b->named_parameters();
  for (const auto& p : model_a->named_parameters()) params_b[p.key()].copy_(p.value());
  Batch batch = Text(torch::randint(0, 30, {2, 6}, torch::kInt64), torch::ones({2, 6}, torch::kInt64));
  EXPECT_TRUE(torch::allclose(model_a->forward(batch), model_b->forward(batch), 1e-5, 1e-6));
  // A non-zero B changes the output.
  params_b["layers.0.lora_query_b"].fill_(0.5);
  EXPECT_FALSE(torch::allclose(model_a->forward(batch), model_b->forward(batch), 1e-5, 1e-6));
}

TEST(TransformerTest, TabularMixedFeaturesAndRegression) {
  ModelOptions options;
  options.kind(ModelKind::kTabularTransformer);
  options.tabular().num_numeric(3).cardinalities({2, 5}).num_classes(4).encoder(
      EncoderOptions().d_model(8).num_heads(2).ffn_dim(16).num_layers(1).norm_first(true));
  auto model = Build(options);
  Batch batch;
  batch.numeric = torch::randn({6, 3});
  batch.categorical = torch::stack({torch::randint(0, 2, {6}, torch::kInt64), torch::randint(0, 5, {6}, torch::kInt64)}, 1);
  EXPECT_EQ(model->forward(batch).sizes().vec(), (std::vector<int64_t>{6, 4}));
  options.tabular().regression(true).cardinalities({});
  auto regression = Build(options);
  batch.categorical = torch::Tensor();
  EXPECT_EQ(regression->forward(batch).sizes().vec(), (std::vector<int64_t>{6, 1}));
  EXPECT_TRUE(regression->regression());
}

}  // namespace
}  // namespace fedattn::models
