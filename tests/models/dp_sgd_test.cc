#include "fedattn/models/dp_sgd.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "fedattn/models/dp_ops.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedattn::models {
namespace {

using ::testing::HasSubstr;

// ---------------------------------------------------------------------------------------------
// Models and data: small random models covering every parameter kind of both models.

// d_model 8 takes dp_ops' per-example-gradient path for every Linear on sequences; wide (16,
// feed-forward 64) its ghost-norm path for the QKV and feed-forward projections.
EncoderOptions SmallEncoder(bool norm_first, int64_t layers = 2, double dropout = 0, bool wide = false) {
  return EncoderOptions().d_model(wide ? 16 : 8).num_heads(2).ffn_dim(wide ? 64 : 12).num_layers(layers)
      .norm_first(norm_first).dropout(dropout).attention_dropout(dropout).layer_norm_eps(1e-5);
}

LoraOptions AllTargets() {
  return LoraOptions().rank(2).alpha(4).targets({"query", "key", "value", "attention_output", "ffn"});
}

ModelOptions Text(bool norm_first, Trainable trainable = Trainable::kFull, LoraOptions lora = LoraOptions(),
                  double dropout = 0, int64_t layers = 2, bool wide = false) {
  ModelOptions options;
  options.kind(ModelKind::kTextClassifier).trainable(trainable).lora(lora);
  options.text().vocab_size(30).max_positions(10).type_vocab_size(2).num_classes(3).encoder(
      SmallEncoder(norm_first, layers, dropout, wide));
  return options;
}

ModelOptions Tabular(bool norm_first, Trainable trainable = Trainable::kFull, LoraOptions lora = LoraOptions(),
                     bool regression = false, double dropout = 0, bool wide = false) {
  ModelOptions options;
  options.kind(ModelKind::kTabularTransformer).trainable(trainable).lora(lora);
  options.tabular().num_numeric(3).cardinalities({4, 3}).regression(regression).num_classes(3).encoder(
      SmallEncoder(norm_first, 2, dropout, wide));
  return options;
}

// Padded text (lengths 3..10, some repeated tokens so embedding rows collide within an example).
Batch TextBatch(int64_t n, bool token_types, uint64_t seed) {
  torch::manual_seed(seed);
  Batch batch;
  batch.input_ids = torch::randint(1, 8, {n, 10}, torch::kInt64);
  const torch::Tensor lengths = torch::randint(3, 11, {n}, torch::kInt64);
  batch.attention_mask = (torch::arange(10).unsqueeze(0) < lengths.unsqueeze(1)).to(torch::kInt64);
  batch.input_ids.masked_fill_(batch.attention_mask.eq(0), 0);
  if (token_types) batch.token_type_ids = torch::randint(0, 2, {n, 10}, torch::kInt64) * batch.attention_mask;
  batch.labels = torch::randint(0, 3, {n}, torch::kInt64);
  return SliceBatch(batch, torch::arange(n));
}

Batch TabularBatch(int64_t n, bool regression, uint64_t seed) {
  torch::manual_seed(seed);
  Batch batch;
  batch.numeric = torch::randn({n, 3});
  batch.categorical = torch::stack({torch::randint(0, 4, {n}, torch::kInt64), torch::randint(0, 3, {n}, torch::kInt64)}, 1);
  batch.labels = regression ? torch::randn({n}) : torch::randint(0, 3, {n}, torch::kInt64);
  return batch;
}

struct Fixture {
  std::shared_ptr<ModelImpl> model;
  std::unique_ptr<FlatParameters> flat;
};

Fixture Build(const ModelOptions& options, uint64_t seed = 1) {
  Fixture f;
  auto model = BuildModel(options, seed);
  EXPECT_TRUE(model.ok()) << model.status();
  f.model = *model;
  f.model->train();
  {
    // LoRA's B = 0 at start would leave A with a zero gradient: perturb every parameter so each
    // layer's per-example gradient is generic.
    torch::NoGradGuard no_grad;
    for (auto& p : f.model->parameters()) p.add_(torch::randn_like(p), 0.1);
  }
  auto flat = FlatParameters::Create(*f.model);
  EXPECT_TRUE(flat.ok()) << flat.status();
  f.flat = std::make_unique<FlatParameters>(std::move(*flat));
  return f;
}

std::unique_ptr<DpSgdStep> Step(double noise_multiplier, double max_grad_norm, double expected = 1,
                                bool naive = false, uint64_t seed = 11) {
  auto step = DpSgdStep::Create(DpSgdStepOptions()
                                    .noise_multiplier(noise_multiplier)
                                    .max_grad_norm(max_grad_norm)
                                    .expected_batch_size(expected)
                                    .seed(seed)
                                    .naive_loop(naive));
  EXPECT_TRUE(step.ok()) << step.status();
  return std::move(*step);
}

// Per-example gradients of the batched forward pass (the same dropout masks as a batched step
// when the generator is seeded alike), by one autograd::grad per example: [B, P].
torch::Tensor PerExampleGradients(Fixture& f, const Batch& batch) {
  const torch::Tensor losses = ComputeLoss(f.model->forward(batch), batch.labels, f.model->regression(), true);
  const std::vector<torch::Tensor>& params = f.flat->parameters();
  std::vector<torch::Tensor> rows;
  for (int64_t b = 0; b < batch.size(); ++b) {
    auto grads = torch::autograd::grad({losses[b]}, params, {}, /*retain_graph=*/true, false, /*allow_unused=*/true);
    std::vector<torch::Tensor> flat;
    for (size_t i = 0; i < grads.size(); ++i) {
      flat.push_back(grads[i].defined() ? grads[i].reshape({-1}) : torch::zeros({params[i].numel()}));
    }
    rows.push_back(torch::cat(flat));
  }
  return torch::stack(rows);
}

// A clipping norm in the widest gap between per-example norms (examples may tie): some examples
// clipped, some not, none on the edge.
double MidNorm(const torch::Tensor& per_example) {
  const torch::Tensor sorted = std::get<0>(per_example.norm(2, {1}).sort()).to(torch::kFloat64);
  double best = -1, c = 0;
  for (int64_t i = 1; i < sorted.numel(); ++i) {
    const double lo = sorted[i - 1].item<double>(), hi = sorted[i].item<double>();
    if (hi - lo > best) best = hi - lo, c = 0.5 * (lo + hi);
  }
  return c;
}

torch::Tensor ClippedSumOf(const torch::Tensor& per_example, double c) {
  const torch::Tensor norms = per_example.norm(2, {1});
  return (per_example * (c / (norms + 1e-6)).clamp_max(1.0).unsqueeze(1)).sum(0);
}

double RelativeError(const torch::Tensor& actual, const torch::Tensor& expected) {
  return (actual - expected).norm().item<double>() / std::max(expected.norm().item<double>(), 1e-30);
}

torch::Tensor RunClippedSum(DpSgdStep& step, Fixture& f, const Batch& batch) {
  f.flat->ZeroGrad();
  auto loss = step.ClippedSum(*f.model, batch, f.flat.get());
  EXPECT_TRUE(loss.ok()) << loss.status();
  EXPECT_TRUE(f.flat->GradsBound());
  return f.flat->grads().clone();
}

// ---------------------------------------------------------------------------------------------
// Clipped per-example sums against the naive loop, on every layer type.

struct Case {
  std::string name;
  ModelOptions options;
  bool text = true, token_types = true, regression = false;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::vector<Case> Cases() {
  std::vector<Case> cases;
  cases.push_back({"text_post_ln_full", Text(false)});
  cases.push_back({"text_pre_ln_full", Text(true)});
  cases.push_back({"text_no_token_types", Text(false), true, false});
  cases.push_back({"text_wide_ghost_norms", Text(false, Trainable::kFull, LoraOptions(), 0, 2, true)});
  cases.push_back({"text_wide_lora", Text(true, Trainable::kFull, AllTargets(), 0, 1, true)});
  cases.push_back({"text_no_layers", Text(true, Trainable::kFull, LoraOptions(), 0, 0)});
  cases.push_back({"text_lora", Text(false, Trainable::kLora, AllTargets())});
  cases.push_back({"text_full_and_lora", Text(true, Trainable::kFull, AllTargets())});
  cases.push_back({"text_head", Text(false, Trainable::kHead)});
  cases.push_back({"tabular_pre_ln_full", Tabular(true), false});
  cases.push_back({"tabular_post_ln_full", Tabular(false), false});
  cases.push_back({"tabular_wide_ghost_norms", Tabular(true, Trainable::kFull, LoraOptions(), false, 0, true), false});
  cases.push_back({"tabular_lora", Tabular(true, Trainable::kLora, AllTargets()), false});
  cases.push_back({"tabular_head", Tabular(true, Trainable::kHead), false});
  cases.push_back({"tabular_regression", Tabular(true, Trainable::kFull, LoraOptions(), true), false, true, true});
  return cases;
}

class ClippedSumTest : public ::testing::TestWithParam<Case> {};

Batch CaseBatch(const Case& c, int64_t n, uint64_t seed) {
  return c.text ? TextBatch(n, c.token_types, seed) : TabularBatch(n, c.regression, seed);
}

TEST_P(ClippedSumTest, EqualsNaivePerExampleLoop) {
  const Case& c = GetParam();
  torch::manual_seed(0);
  Fixture f = Build(c.options);
  const Batch batch = CaseBatch(c, 6, 3);
  // C between per-example norms: some examples clipped, some not.
  const torch::Tensor per_example = PerExampleGradients(f, batch);
  const double c_norm = MidNorm(per_example);
  ASSERT_GT(c_norm, 0);

  auto tape = Step(0, c_norm);
  const torch::Tensor fast = RunClippedSum(*tape, f, batch);
  auto naive = Step(0, c_norm, 1, /*naive=*/true);
  const torch::Tensor slow = RunClippedSum(*naive, f, batch);

  EXPECT_GT(tape->clipped(), 0);
  EXPECT_LT(tape->clipped(), batch.size());
  EXPECT_EQ(tape->clipped(), naive->clipped());
  EXPECT_LT(RelativeError(fast, slow), 1e-5) << c.name;
  EXPECT_LT(RelativeError(fast, ClippedSumOf(per_example, c_norm)), 1e-5) << c.name;
  EXPECT_TRUE(torch::allclose(fast, slow, 1e-4, 1e-6 * slow.abs().max().item<double>())) << c.name;
  // Every trainable parameter that the loss depends on got its share.
  EXPECT_GT(fast.abs().sum().item<double>(), 0);
}

TEST_P(ClippedSumTest, ZeroNoiseHugeClipIsThePlainSummedGradient) {
  const Case& c = GetParam();
  Fixture f = Build(c.options);
  const Batch batch = CaseBatch(c, 5, 4);
  f.flat->ZeroGrad();
  ComputeLoss(f.model->forward(batch), batch.labels, f.model->regression(), true).sum().backward();
  const torch::Tensor plain = f.flat->grads().clone();
  auto step = Step(/*noise=*/0, /*clip=*/1e9, /*expected=*/1);
  f.flat->ZeroGrad();
  auto loss = step->Compute(*f.model, batch, f.flat.get());
  ASSERT_TRUE(loss.ok()) << loss.status();
  EXPECT_LT(RelativeError(f.flat->grads(), plain), 1e-5) << c.name;
  EXPECT_EQ(step->clipped(), 0);
}

INSTANTIATE_TEST_SUITE_P(Models, ClippedSumTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

// With dropout on, the norms are those of the computation that ran (its masks), not of another one.
TEST(DpSgdStepTest, DropoutNormsAreThoseOfTheActualComputation) {
  for (bool text : {true, false}) {
    LoraOptions lora = AllTargets();
    lora.dropout(0.2);
    Fixture f = Build(text ? Text(false, Trainable::kFull, lora, 0.2) : Tabular(true, Trainable::kFull, lora, false, 0.2));
    const Batch batch = text ? TextBatch(6, true, 5) : TabularBatch(6, false, 5);
    torch::manual_seed(42);
    const torch::Tensor per_example = PerExampleGradients(f, batch);
    const double c_norm = MidNorm(per_example);
    auto step = Step(0, c_norm);
    torch::manual_seed(42);
    const torch::Tensor fast = RunClippedSum(*step, f, batch);
    EXPECT_LT(RelativeError(fast, ClippedSumOf(per_example, c_norm)), 1e-5) << (text ? "text" : "tabular");
  }
}

TEST(DpSgdStepTest, NoiseIsAddedOnceThenDividedByTheExpectedBatch) {
  Fixture f = Build(Tabular(true));
  const Batch batch = TabularBatch(4, false, 6);
  auto exact = Step(0, 0.5);
  const torch::Tensor clipped = RunClippedSum(*exact, f, batch);
  // Same seed: the noise is the stream's first draws, σC N(0, 1), added to the clipped sum.
  auto noisy = Step(2.0, 0.5, /*expected=*/8, false, /*seed=*/21);
  f.flat->ZeroGrad();
  ASSERT_TRUE(noisy->Compute(*f.model, batch, f.flat.get()).ok());
  auto rng = dp::SecureRng::CreateForTesting(21);
  ASSERT_TRUE(rng.ok());
  torch::Tensor noise = torch::zeros_like(clipped);
  ASSERT_TRUE(AddSecureGaussianNoise(noise, 2.0 * 0.5, *rng).ok());
  EXPECT_TRUE(torch::allclose(f.flat->grads(), (clipped + noise) / 8, 1e-5, 1e-6));
}

TEST(DpSgdStepTest, EmptyBatchStillGetsNoise) {
  Fixture f = Build(Tabular(true));
  auto step = Step(1.5, 2.0, /*expected=*/4);
  f.flat->ZeroGrad();
  auto loss = step->Compute(*f.model, Batch{}, f.flat.get());
  ASSERT_TRUE(loss.ok()) << loss.status();
  EXPECT_EQ(*loss, 0.0);
  const torch::Tensor g = f.flat->grads().to(torch::kFloat64);
  // Each element ~ N(0, (σC / 4)²) = N(0, 0.75²).
  const int64_t n = g.numel();
  ASSERT_GT(n, 1000);
  EXPECT_NEAR(g.mean().item<double>(), 0.0, 5 * 0.75 / std::sqrt(n));
  EXPECT_NEAR(g.var().item<double>(), 0.5625, 5 * 0.5625 * std::sqrt(2.0 / n));
}

TEST(DpSgdStepTest, RequiresTheExpectedBatchSize) {
  Fixture f = Build(Tabular(true));
  auto step = Step(1, 1, /*expected=*/0);
  auto loss = step->Compute(*f.model, TabularBatch(2, false, 1), f.flat.get());
  EXPECT_EQ(loss.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(DpSgdStep::Create(DpSgdStepOptions().max_grad_norm(0)).ok());
  EXPECT_FALSE(DpSgdStep::Create(DpSgdStepOptions().noise_multiplier(-1)).ok());
  EXPECT_FALSE(DpSgdStep::Create(DpSgdStepOptions().noise_multiplier(NAN)).ok());
}

// ---------------------------------------------------------------------------------------------
// Refusal of what the tape cannot clip.

// A model that uses a trainable parameter outside dp_ops.h (raw matmul), or one twice.
class UnsupportedModel : public ModelImpl {
 public:
  explicit UnsupportedModel(bool shared) : ModelImpl(ModelOptions()), shared_(shared) {
    ok_ = register_parameter("ok_weight", torch::randn({4, 3}));
    raw_ = register_parameter("raw_weight", torch::randn({2, 4}));
  }
  torch::Tensor forward(const Batch& batch) override {
    const torch::Tensor hidden = at::tanh(ops::Linear(batch.numeric, ok_, {}));
    if (shared_) return ops::Linear(at::tanh(ops::Linear(hidden.narrow(1, 0, 3), ok_, {})), raw_, {});
    return at::matmul(hidden, raw_.t());
  }

 private:
  bool shared_;
  torch::Tensor ok_, raw_;
};

TEST(DpSgdStepTest, RefusesAParameterUsedOutsideThePerExampleOps) {
  auto model = std::make_shared<UnsupportedModel>(false);
  auto flat = FlatParameters::Create(*model);
  ASSERT_TRUE(flat.ok());
  auto step = Step(1, 1);
  Batch batch;
  batch.numeric = torch::randn({3, 3});
  batch.labels = torch::tensor({0, 1, 0}, torch::kInt64);
  flat->ZeroGrad();
  auto loss = step->Compute(*model, batch, &*flat);
  EXPECT_EQ(loss.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(loss.status().message()), HasSubstr("'raw_weight'"));
  EXPECT_TRUE(flat->GradsBound());
  EXPECT_TRUE(step->CheckSupported(*model, batch, &*flat).message().find("raw_weight") != std::string::npos);
}

TEST(DpSgdStepTest, RefusesAParameterUsedTwice) {
  auto model = std::make_shared<UnsupportedModel>(true);
  auto flat = FlatParameters::Create(*model);
  ASSERT_TRUE(flat.ok());
  auto step = Step(1, 1);
  Batch batch;
  batch.numeric = torch::randn({3, 3});
  batch.labels = torch::tensor({0, 1, 0}, torch::kInt64);
  auto loss = step->Compute(*model, batch, &*flat);
  EXPECT_EQ(loss.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(loss.status().message()), HasSubstr("'ok_weight'"));
  EXPECT_THAT(std::string(loss.status().message()), HasSubstr("more than one operation"));
  EXPECT_TRUE(flat->GradsBound());
}

TEST(DpSgdStepTest, TrainerRefusesToStartOnAnUnsupportedModel) {
  auto model = std::make_shared<UnsupportedModel>(false);
  auto trainer = Trainer::Create(model, TrainerOptions().log_every(0).threads(1), nullptr);
  ASSERT_TRUE(trainer.ok());
  ASSERT_TRUE((*trainer)->EnableDpSgd(DpSgdOptions().expected_batch_size(2).steps(3).seed(1)).ok());
  const torch::Tensor before = (*trainer)->flat().params().clone();
  Batch train;
  train.numeric = torch::randn({8, 3});
  train.labels = torch::randint(0, 2, {8}, torch::kInt64);
  auto result = (*trainer)->Fit(train, Batch{});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("raw_weight"));
  EXPECT_TRUE(torch::equal(before, (*trainer)->flat().params()));
}

// ---------------------------------------------------------------------------------------------
// Noise.

TEST(SecureGaussianNoiseTest, MeanVarianceAndTails) {
  auto rng = dp::SecureRng::CreateForTesting(5);
  ASSERT_TRUE(rng.ok());
  const int64_t n = 400001;  // odd: the last element comes from half a pair
  const double sigma = 2.5;
  torch::Tensor x = torch::full({n}, 3.0f);
  ASSERT_TRUE(AddSecureGaussianNoise(x, sigma, *rng).ok());
  const torch::Tensor z = (x.to(torch::kFloat64) - 3.0) / sigma;
  EXPECT_NEAR(z.mean().item<double>(), 0.0, 5.0 / std::sqrt(n));
  EXPECT_NEAR(z.var().item<double>(), 1.0, 5.0 * std::sqrt(2.0 / n));
  EXPECT_NEAR(z.pow(4).mean().item<double>(), 3.0, 5.0 * std::sqrt(96.0 / n));  // Var(z⁴) = 105 - 9
  EXPECT_NEAR(z.abs().lt(1.0).to(torch::kFloat64).mean().item<double>(), 0.682689, 5 * 0.4655 / std::sqrt(n));
  EXPECT_NE(z[n - 1].item<double>(), 0.0);
}

TEST(SecureGaussianNoiseTest, SeededStreamsRepeatAndDiffer) {
  auto draw = [](uint64_t seed) {
    auto rng = dp::SecureRng::CreateForTesting(seed);
    torch::Tensor x = torch::zeros({1000});
    EXPECT_TRUE(AddSecureGaussianNoise(x, 1.0, *rng).ok());
    return x;
  };
  EXPECT_TRUE(torch::equal(draw(1), draw(1)));
  EXPECT_FALSE(torch::equal(draw(1), draw(2)));
  // Several independent streams (one per 2^18 elements), the same whatever the thread count.
  auto draw_large = [](int threads) {
    at::set_num_threads(threads);
    auto rng = dp::SecureRng::CreateForTesting(7);
    torch::Tensor x = torch::zeros({700000});
    EXPECT_TRUE(AddSecureGaussianNoise(x, 1.0, *rng).ok());
    return x;
  };
  const torch::Tensor one_thread = draw_large(1);
  EXPECT_TRUE(torch::equal(one_thread, draw_large(2)));
  EXPECT_TRUE(torch::equal(one_thread, draw_large(3)));
  // Spans differ from each other (no key reuse).
  EXPECT_FALSE(torch::equal(one_thread.narrow(0, 0, 1000), one_thread.narrow(0, 1 << 18, 1000)));
  auto rng = dp::SecureRng::Create();
  ASSERT_TRUE(rng.ok());
  torch::Tensor x = torch::zeros({10});
  EXPECT_EQ(AddSecureGaussianNoise(x, -1.0, *rng).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AddSecureGaussianNoise(x, INFINITY, *rng).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(torch::equal(x, torch::zeros({10})));
}

// ---------------------------------------------------------------------------------------------
// Poisson sampling.

// Binomial(n, q) pmf, in log space.
double BinomialPmf(int64_t n, double q, int64_t k) {
  return std::exp(std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0) + k * std::log(q) +
                  (n - k) * std::log1p(-q));
}

TEST(PoissonSamplerTest, BatchSizesFollowTheBinomial) {
  const int64_t n = 500, draws = 4000;
  const double q = 0.02;  // mean 10: small batches, and sometimes empty ones
  auto sampler = PoissonSampler::Create(n, q, /*seed=*/9);
  ASSERT_TRUE(sampler.ok());
  std::vector<int64_t> histogram(n + 1), inclusions(n);
  double sum = 0, sum_sq = 0;
  for (int64_t i = 0; i < draws; ++i) {
    const std::vector<int64_t> batch = sampler->Next();
    ASSERT_TRUE(std::is_sorted(batch.begin(), batch.end()));
    ASSERT_TRUE(std::adjacent_find(batch.begin(), batch.end()) == batch.end());
    for (int64_t index : batch) {
      ASSERT_GE(index, 0);
      ASSERT_LT(index, n);
      ++inclusions[index];
    }
    const auto k = static_cast<int64_t>(batch.size());
    ++histogram[k];
    sum += k;
    sum_sq += static_cast<double>(k * k);
  }
  // Moments: mean nq, variance nq(1 - q).
  const double mean = sum / draws, variance = sum_sq / draws - mean * mean;
  const double expected_variance = n * q * (1 - q);
  EXPECT_NEAR(mean, n * q, 5 * std::sqrt(expected_variance / draws));
  EXPECT_NEAR(variance, expected_variance, 5 * expected_variance * std::sqrt(2.0 / draws));
  // Chi-square goodness of fit, neighbouring sizes pooled until each bin expects >= 5.
  std::vector<double> expected_bins, observed_bins;
  double expected_bin = 0, observed_bin = 0;
  for (int64_t k = 0; k <= n; ++k) {
    expected_bin += draws * BinomialPmf(n, q, k);
    observed_bin += static_cast<double>(histogram[k]);
    if (expected_bin >= 5) {
      expected_bins.push_back(expected_bin);
      observed_bins.push_back(observed_bin);
      expected_bin = observed_bin = 0;
    }
  }
  expected_bins.back() += expected_bin;
  observed_bins.back() += observed_bin;
  double chi2 = 0;
  for (size_t i = 0; i < expected_bins.size(); ++i) {
    chi2 += (observed_bins[i] - expected_bins[i]) * (observed_bins[i] - expected_bins[i]) / expected_bins[i];
  }
  const auto bins = static_cast<int64_t>(expected_bins.size());
  ASSERT_GE(bins, 8);
  // 99.9% quantile of chi-square with bins - 1 degrees of freedom (Wilson–Hilferty).
  const double df = static_cast<double>(bins - 1), z = 3.09;
  const double quantile = df * std::pow(1 - 2 / (9 * df) + z * std::sqrt(2 / (9 * df)), 3);
  EXPECT_LT(chi2, quantile) << bins << " bins";
  // Every index equally likely: inclusion counts ~ Binomial(draws, q).
  double chi2_index = 0;
  for (int64_t c : inclusions) chi2_index += (c - draws * q) * (c - draws * q) / (draws * q * (1 - q));
  EXPECT_LT(chi2_index, (n - 1) + 3.09 * std::sqrt(2.0 * (n - 1)));
}

TEST(PoissonSamplerTest, EmptyBatchesOccurAtTheirRate) {
  auto sampler = PoissonSampler::Create(50, 0.02, /*seed=*/2);
  ASSERT_TRUE(sampler.ok());
  const int64_t draws = 2000;
  int64_t empty = 0;
  for (int64_t i = 0; i < draws; ++i) empty += sampler->Next().empty() ? 1 : 0;
  const double p = std::pow(0.98, 50);  // ≈ 0.364
  EXPECT_NEAR(static_cast<double>(empty) / draws, p, 5 * std::sqrt(p * (1 - p) / draws));
}

TEST(PoissonSamplerTest, EdgeRatesAndErrors) {
  auto all = PoissonSampler::Create(5, 1.0, 1);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->Next(), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  auto rare = PoissonSampler::Create(3, 1e-9, 1);
  ASSERT_TRUE(rare.ok());
  EXPECT_TRUE(rare->Next().empty());
  EXPECT_FALSE(PoissonSampler::Create(0, 0.5).ok());
  EXPECT_FALSE(PoissonSampler::Create(5, 0.0).ok());
  EXPECT_FALSE(PoissonSampler::Create(5, 1.5).ok());
  EXPECT_FALSE(PoissonSampler::Create(5, NAN).ok());
  auto a = PoissonSampler::Create(1000, 0.1, 3), b = PoissonSampler::Create(1000, 0.1, 3);
  EXPECT_EQ(a->Next(), b->Next());
}

// ---------------------------------------------------------------------------------------------
// The trainer's DP-SGD mode.

Batch LinearTask(int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  Batch batch;
  batch.numeric = torch::randn({n, 3});
  batch.categorical = torch::zeros({n, 2}, torch::kInt64);
  batch.labels = (batch.numeric.select(1, 0) + batch.numeric.select(1, 1) > 0).to(torch::kInt64);
  return batch;
}

std::unique_ptr<Trainer> DpTrainer(const DpSgdOptions& dp) {
  ModelOptions options = Tabular(true);
  options.tabular().num_classes(2);
  auto model = BuildModel(options, 3);
  EXPECT_TRUE(model.ok());
  auto trainer = Trainer::Create(
      *model, TrainerOptions().epochs(3).log_every(0).threads(1).seed(3).optimizer(AdamWOptions().lr(5e-3)), nullptr);
  EXPECT_TRUE(trainer.ok());
  EXPECT_TRUE((*trainer)->EnableDpSgd(dp).ok());
  return std::move(*trainer);
}

TEST(TrainerDpSgdTest, TakesTheRequestedPoissonStepsAndReportsThem) {
  const Batch train = LinearTask(64, 1), validation = LinearTask(32, 2);
  const DpSgdOptions dp = DpSgdOptions().noise_multiplier(0.8).max_grad_norm(1.0).expected_batch_size(8).steps(20).seed(4);
  auto trainer = DpTrainer(dp);
  ASSERT_TRUE(trainer->dp_sgd());
  auto result = trainer->Fit(train, validation);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_TRUE(result->dp_sgd.has_value());
  EXPECT_EQ(result->steps, 20);
  EXPECT_EQ(result->dp_sgd->steps, 20);
  EXPECT_DOUBLE_EQ(result->dp_sgd->sampling_rate, 8.0 / 64);
  EXPECT_DOUBLE_EQ(result->dp_sgd->noise_multiplier, 0.8);
  EXPECT_DOUBLE_EQ(result->dp_sgd->max_grad_norm, 1.0);
  EXPECT_GT(result->dp_sgd->sampled_examples, 0);
  EXPECT_GE(result->dp_sgd->clipped_fraction, 0.0);
  EXPECT_LE(result->dp_sgd->clipped_fraction, 1.0);
  // An "epoch" is round(1/q) = 8 steps: evaluations after 8, 16 and the last step.
  EXPECT_EQ(result->history.size(), 3u);
  EXPECT_EQ(result->validation.examples, 32);

  // The same seeds give the same run; steps from epochs when not given.
  auto again = DpTrainer(dp);
  ASSERT_TRUE(again->Fit(train, validation).ok());
  EXPECT_TRUE(torch::equal(trainer->flat().params(), again->flat().params()));
  auto by_epochs = DpTrainer(DpSgdOptions().sampling_rate(0.25).seed(4));
  auto epochs_result = by_epochs->Fit(train, Batch{});
  ASSERT_TRUE(epochs_result.ok());
  EXPECT_EQ(epochs_result->dp_sgd->steps, 3 * 4);
}

TEST(TrainerDpSgdTest, RejectsBadOptions) {
  EXPECT_FALSE(DpSgdOptions().Validate().ok());  // neither rate nor batch
  EXPECT_FALSE(DpSgdOptions().sampling_rate(0.1).expected_batch_size(4).Validate().ok());
  EXPECT_FALSE(DpSgdOptions().sampling_rate(1.5).Validate().ok());
  EXPECT_FALSE(DpSgdOptions().sampling_rate(0.1).max_grad_norm(0).Validate().ok());
  EXPECT_FALSE(DpSgdOptions().sampling_rate(0.1).noise_multiplier(-1).Validate().ok());
  EXPECT_FALSE(DpSgdOptions().sampling_rate(0.1).steps(-1).Validate().ok());
  EXPECT_TRUE(DpSgdOptions().sampling_rate(0.1).Validate().ok());
  auto trainer = DpTrainer(DpSgdOptions().expected_batch_size(100).seed(1));
  auto result = trainer->Fit(LinearTask(10, 1), Batch{});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("exceeds the 10 training examples"));
}

}  // namespace
}  // namespace fedattn::models
