#include "fedattn/models/trainer.h"

#include <cmath>
#include <sstream>

#include <torch/torch.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedattn::models {
namespace {

using ::testing::HasSubstr;

// y = 1 when x0 + x1 > 0: learnable by any working model.
Batch LinearTask(int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  Batch batch;
  batch.numeric = torch::randn({n, 3});
  batch.labels = (batch.numeric.select(1, 0) + batch.numeric.select(1, 1) > 0).to(torch::kInt64);
  return batch;
}

ModelOptions TinyTabular() {
  ModelOptions options;
  options.kind(ModelKind::kTabularTransformer);
  options.tabular().num_numeric(3).encoder(
      EncoderOptions().d_model(8).num_heads(2).ffn_dim(16).num_layers(1).norm_first(true).dropout(0).attention_dropout(0));
  return options;
}

ModelOptions TinyText() {
  ModelOptions options;
  options.text().vocab_size(20).max_positions(8).encoder(
      EncoderOptions().d_model(16).num_heads(2).ffn_dim(32).num_layers(1).dropout(0).attention_dropout(0));
  return options;
}

// Label 1 when token 5 occurs in the (variable-length, padded) sequence.
Batch TokenTask(int64_t n) {
  torch::manual_seed(5);
  Batch batch;
  batch.input_ids = torch::randint(6, 20, {n, 8}, torch::kInt64);
  const torch::Tensor lengths = torch::randint(3, 9, {n}, torch::kInt64);
  batch.attention_mask = (torch::arange(8).unsqueeze(0) < lengths.unsqueeze(1)).to(torch::kInt64);
  batch.labels = torch::randint(0, 2, {n}, torch::kInt64);
  batch.input_ids.select(1, 0).fill_(2);  // [CLS]
  batch.input_ids.select(1, 1).masked_fill_(batch.labels.eq(1), 5);
  batch.input_ids.masked_fill_(batch.attention_mask.eq(0), 0);
  return batch;
}

TrainerOptions Quick() {
  return TrainerOptions().epochs(30).batch_size(32).log_every(0).threads(1).max_grad_norm(1.0).optimizer(
      AdamWOptions().lr(5e-3).weight_decay(0));
}

std::unique_ptr<Trainer> MakeTrainer(const ModelOptions& model_options, const TrainerOptions& options,
                                     std::ostream* progress = nullptr) {
  auto model = BuildModel(model_options, options.seed());
  EXPECT_TRUE(model.ok()) << model.status();
  auto trainer = Trainer::Create(*model, options, progress);
  EXPECT_TRUE(trainer.ok()) << trainer.status();
  return std::move(*trainer);
}

TEST(TrainerTest, ScheduleWarmsUpThenDecays) {
  TrainerOptions options;
  options.optimizer().lr(1.0);
  options.warmup_steps(4).decay(LrDecay::kLinear);
  EXPECT_DOUBLE_EQ(LearningRateAt(options, 0, 14), 0.2);
  EXPECT_DOUBLE_EQ(LearningRateAt(options, 3, 14), 0.8);
  EXPECT_DOUBLE_EQ(LearningRateAt(options, 4, 14), 1.0);
  EXPECT_DOUBLE_EQ(LearningRateAt(options, 9, 14), 0.5);
  options.decay(LrDecay::kCosine).min_lr_ratio(0.1);
  EXPECT_NEAR(LearningRateAt(options, 9, 14), 0.55, 1e-12);
  EXPECT_NEAR(LearningRateAt(options, 14, 14), 0.1, 1e-12);
  options.decay(LrDecay::kConstant);
  EXPECT_DOUBLE_EQ(LearningRateAt(options, 13, 14), 1.0);
}

TEST(TrainerTest, ParametersAndGradientsLiveInFlatBuffers) {
  auto trainer = MakeTrainer(TinyTabular(), Quick());
  FlatParameters& flat = trainer->flat();
  EXPECT_EQ(flat.params().numel(), BuildModelSpec(trainer->model().options())->NumTrainable());
  ASSERT_TRUE(trainer->TrainStep(LinearTask(16, 1), 1e-2).ok());
  EXPECT_TRUE(flat.GradsBound());
  EXPECT_GT(flat.grads().abs().sum().item<double>(), 0);
  // Writing the flat buffer writes the module's parameters.
  flat.params().data().fill_(0.25);
  for (const auto& p : trainer->model().parameters()) EXPECT_TRUE(torch::all(p.eq(0.25)).item<bool>());
}

// The fused flat AdamW takes the same steps as LibTorch's AdamW with weight decay on the matrix
// and none on the bias.
TEST(TrainerTest, FlatAdamWMatchesTorchAdamW) {
  torch::manual_seed(0);
  torch::nn::Linear a(4, 3), b(4, 3);
  {
    torch::NoGradGuard no_grad;
    b->weight.copy_(a->weight);
    b->bias.copy_(a->bias);
  }
  auto flat = FlatParameters::Create(*a);
  ASSERT_TRUE(flat.ok()) << flat.status();
  FlatAdamW ours(&*flat, AdamWOptions().lr(0.1).weight_decay(0.05));
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{b->weight},
                      std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(0.1).weight_decay(0.05)));
  groups.emplace_back(std::vector<torch::Tensor>{b->bias},
                      std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(0.1).weight_decay(0)));
  torch::optim::AdamW theirs(groups, torch::optim::AdamWOptions(0.1));
  const torch::Tensor x = torch::randn({8, 4});
  for (int step = 0; step < 5; ++step) {
    flat->ZeroGrad();
    a->forward(x).pow(2).sum().backward();
    ours.Step(0.1);
    theirs.zero_grad();
    b->forward(x).pow(2).sum().backward();
    theirs.step();
  }
  EXPECT_TRUE(torch::allclose(a->weight, b->weight, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(a->bias, b->bias, 1e-5, 1e-6));
}

TEST(TrainerTest, LossFallsOnALearnableTabularTask) {
  std::ostringstream progress;
  auto trainer = MakeTrainer(TinyTabular(), Quick().epochs(15).log_every(20), &progress);
  auto result = trainer->Fit(LinearTask(256, 1), LinearTask(128, 2));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_LT(result->history.back().train_loss, 0.5 * result->history.front().train_loss);
  EXPECT_GT(result->validation.accuracy, 0.9);
  EXPECT_GT(result->validation.roc_auc, 0.95);
  EXPECT_THAT(progress.str(), HasSubstr("epoch 3/15 step 20/120 loss"));
  EXPECT_THAT(progress.str(), HasSubstr("| validation loss"));
}

TEST(TrainerTest, RegressionHeadLearnsALinearTarget) {
  ModelOptions options = TinyTabular();
  options.tabular().regression(true);
  auto trainer = MakeTrainer(options, Quick().epochs(20));
  auto data = [](uint64_t seed) {
    Batch batch = LinearTask(256, seed);
    batch.labels = 2.0 * batch.numeric.select(1, 0) - batch.numeric.select(1, 2);
    return batch;
  };
  auto result = trainer->Fit(data(1), data(2));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->validation.regression);
  EXPECT_GT(result->validation.r2, 0.9);
  EXPECT_LT(result->validation.rmse, 0.7);
}

TEST(TrainerTest, LossFallsOnALearnableTextTask) {
  auto trainer = MakeTrainer(TinyText(), Quick().epochs(20));
  auto result = trainer->Fit(TokenTask(128), TokenTask(64));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_LT(result->history.back().train_loss, 0.3 * result->history.front().train_loss);
  EXPECT_GT(result->validation.accuracy, 0.9);
}

TEST(TrainerTest, LoraTrainsOnlyAdaptersAndHead) {
  ModelOptions options = TinyText();
  options.lora(LoraOptions().rank(2).targets({"query", "value", "ffn"})).trainable(Trainable::kLora);
  auto trainer = MakeTrainer(options, Quick().epochs(2));
  std::map<std::string, torch::Tensor> before;
  for (const auto& p : trainer->model().named_parameters()) before[p.key()] = p.value().detach().clone();
  ASSERT_TRUE(trainer->Fit(TokenTask(64), Batch()).ok());
  for (const auto& p : trainer->model().named_parameters()) {
    const bool adapter = p.key().find("lora_") != std::string::npos;
    const bool head = p.key().rfind("classifier", 0) == 0 || p.key().rfind("pooler", 0) == 0;
    const bool changed = !torch::equal(before[p.key()], p.value());
    EXPECT_EQ(changed, adapter || head) << p.key();
    EXPECT_EQ(p.value().requires_grad(), adapter || head) << p.key();
  }
  EXPECT_EQ(trainer->flat().params().numel(), BuildModelSpec(options)->NumTrainable());
}

TEST(TrainerTest, SameSeedSameWeights) {
  auto run = [] {
    auto trainer = MakeTrainer(TinyTabular(), Quick().epochs(2).seed(9));
    EXPECT_TRUE(trainer->Fit(LinearTask(64, 1), Batch()).ok());
    return trainer->flat().params().clone();
  };
  EXPECT_TRUE(torch::equal(run(), run()));
}

// DP-SGD plugs in here: the trainer uses whatever gradient the step writes.
TEST(TrainerTest, GradientStepIsReplaceable) {
  struct ZeroStep : GradientStep {
    int calls = 0;
    absl::StatusOr<double> Compute(ModelImpl&, const Batch&, FlatParameters*) override {
      ++calls;
      return 0.5;
    }
  };
  auto trainer = MakeTrainer(TinyTabular(), Quick().epochs(1).batch_size(16));
  auto step = std::make_unique<ZeroStep>();
  ZeroStep* raw = step.get();
  trainer->set_gradient_step(std::move(step));
  const torch::Tensor before = trainer->flat().params().clone();
  auto result = trainer->Fit(LinearTask(64, 1), Batch());
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(raw->calls, 4);
  EXPECT_TRUE(torch::equal(before, trainer->flat().params()));  // zero gradient, no decay: no move
  EXPECT_DOUBLE_EQ(result->history[0].train_loss, 0.5);
}

TEST(TrainerTest, MetricsMatchKnownValues) {
  // Scores for the positive class: 0.1 (neg), 0.4 (pos), 0.6 (neg), 0.8 (pos): AUC 3/4.
  auto logits_for = [](std::vector<double> p) {
    torch::Tensor positive = torch::tensor(p, torch::kFloat64);
    return torch::stack({torch::log1p(-positive), torch::log(positive)}, 1).to(torch::kFloat32);
  };
  const torch::Tensor labels = torch::tensor({0, 1, 0, 1}, torch::kInt64);
  Metrics m = ComputeMetrics(logits_for({0.1, 0.4, 0.6, 0.8}), labels, false);
  EXPECT_NEAR(m.roc_auc, 0.75, 1e-9);
  EXPECT_NEAR(m.accuracy, 0.5, 1e-9);  // predictions: 0, 0, 1, 1
  EXPECT_NEAR(m.macro_f1, 0.5, 1e-9);
  EXPECT_TRUE(std::isnan(ComputeMetrics(logits_for({0.1, 0.2}), torch::tensor({1, 1}, torch::kInt64), false).roc_auc));
  Metrics r = ComputeMetrics(torch::tensor({{1.0f}, {2.0f}, {3.0f}}), torch::tensor({1.0f, 2.0f, 5.0f}), true);
  EXPECT_NEAR(r.rmse, std::sqrt(4.0 / 3), 1e-6);
  EXPECT_NEAR(r.r2, 1.0 - 4.0 / (78.0 / 9), 1e-6);
}

TEST(TrainerTest, InvalidOptionsAreErrors) {
  auto model = BuildModel(TinyTabular(), 0);
  ASSERT_TRUE(model.ok());
  EXPECT_THAT(Trainer::Create(*model, TrainerOptions().batch_size(0), nullptr).status().message(),
              HasSubstr("batch_size"));
  EXPECT_THAT(Trainer::Create(*model, TrainerOptions().device("tpu"), nullptr).status().message(),
              HasSubstr("device must be cpu, cuda or auto"));
}

}  // namespace
}  // namespace fedattn::models
