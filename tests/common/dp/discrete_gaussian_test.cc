#include "fedattn/dp/discrete_gaussian.h"

#include <chrono>
#include <cmath>
#include <map>
#include <vector>

#include "gtest/gtest.h"

namespace fedattn::dp {
namespace {

SecureRng Rng(uint64_t seed) { return *SecureRng::CreateForTesting(seed); }

// Pearson χ² of observed counts against probabilities (tail mass pooled into one bin).
double ChiSquare(const std::map<int64_t, int>& counts, int n,
                 const std::map<int64_t, double>& probabilities) {
  double chi2 = 0;
  double covered = 0;
  int counted = 0;
  for (const auto& [x, p] : probabilities) {
    const auto it = counts.find(x);
    const int observed = it == counts.end() ? 0 : it->second;
    chi2 += std::pow(observed - n * p, 2) / (n * p);
    covered += p;
    counted += observed;
  }
  const double rest = 1.0 - covered;
  if (rest > 1e-12) chi2 += std::pow((n - counted) - n * rest, 2) / (n * rest);
  return chi2;
}

TEST(DiscreteGaussianTest, BernoulliExpFrequencies) {
  SecureRng rng = Rng(11);
  constexpr int kN = 200000;
  for (auto [num, den] : std::vector<std::pair<uint64_t, uint64_t>>{
           {0, 1}, {1, 2}, {1, 1}, {7, 3}, {5, 1}}) {
    int hits = 0;
    for (int i = 0; i < kN; ++i) hits += SampleBernoulliExp(num, den, rng);
    const double p = std::exp(-static_cast<double>(num) / static_cast<double>(den));
    EXPECT_NEAR(static_cast<double>(hits) / kN, p, 5 * std::sqrt(p * (1 - p) / kN) + 1e-12)
        << num << "/" << den;
  }
}

class DiscreteLaplaceTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(DiscreteLaplaceTest, MatchesPmf) {
  const uint64_t t = GetParam();
  SecureRng rng = Rng(100 + t);
  constexpr int kN = 100000;
  std::map<int64_t, int> counts;
  for (int i = 0; i < kN; ++i) ++counts[SampleDiscreteLaplace(t, rng)];
  // P(x) = (1 - e^(-1/t)) / (1 + e^(-1/t)) · e^(-|x|/t).
  const double r = std::exp(-1.0 / static_cast<double>(t));
  std::map<int64_t, double> pmf;
  const int64_t span = static_cast<int64_t>(6 * t) + 3;
  for (int64_t x = -span; x <= span; ++x) {
    pmf[x] = (1 - r) / (1 + r) * std::pow(r, static_cast<double>(std::llabs(x)));
  }
  const double dof = static_cast<double>(pmf.size());
  EXPECT_LT(ChiSquare(counts, kN, pmf), dof + 6 * std::sqrt(2 * dof) + 10);
}
INSTANTIATE_TEST_SUITE_P(Scales, DiscreteLaplaceTest, ::testing::Values(1u, 3u, 10u));

struct Variance {
  uint64_t num;
  uint64_t den;
};

class DiscreteGaussianPmfTest : public ::testing::TestWithParam<Variance> {};

TEST_P(DiscreteGaussianPmfTest, MatchesPmf) {
  const auto [num, den] = GetParam();
  auto sampler = DiscreteGaussianSampler::Create(num, den);
  ASSERT_TRUE(sampler.ok()) << sampler.status();
  const double sigma2 = static_cast<double>(num) / static_cast<double>(den);
  SecureRng rng = Rng(num * 31 + den);
  constexpr int kN = 100000;
  std::map<int64_t, int> counts;
  for (int i = 0; i < kN; ++i) ++counts[sampler->Sample(rng)];
  // P(x) ∝ exp(-x²/(2σ²)), normalised over a range holding all but ~e^-50 of the mass.
  const int64_t span = static_cast<int64_t>(10 * std::sqrt(sigma2)) + 3;
  std::map<int64_t, double> pmf;
  double z = 0;
  for (int64_t x = -span; x <= span; ++x) z += std::exp(-double(x * x) / (2 * sigma2));
  for (int64_t x = -span; x <= span; ++x) {
    const double p = std::exp(-double(x * x) / (2 * sigma2)) / z;
    if (p * kN >= 5) pmf[x] = p;  // χ² needs expected counts >= 5; the rest is pooled
  }
  const double dof = static_cast<double>(pmf.size());
  EXPECT_LT(ChiSquare(counts, kN, pmf), dof + 6 * std::sqrt(2 * dof) + 10)
      << "sigma2=" << num << "/" << den;
}
INSTANTIATE_TEST_SUITE_P(Variances, DiscreteGaussianPmfTest,
                         ::testing::Values(Variance{1, 4}, Variance{2, 3}, Variance{1, 1},
                                           Variance{25, 1}, Variance{1000, 7}));

TEST(DiscreteGaussianTest, LargeVarianceMoments) {
  // σ = 1000 (σ² = 10^6): mean 0, variance σ² (the discrete Gaussian's variance is below σ² by
  // less than 1e-300 here), P(|x| <= σ) close to the continuous 0.6827.
  auto sampler = DiscreteGaussianSampler::Create(1'000'000, 1);
  ASSERT_TRUE(sampler.ok());
  SecureRng rng = Rng(77);
  constexpr int kN = 200000;
  double sum = 0, sum2 = 0;
  int within = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kN; ++i) {
    const double x = static_cast<double>(sampler->Sample(rng));
    sum += x;
    sum2 += x * x;
    within += std::fabs(x) <= 1000;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("discrete Gaussian, sigma=1000: %.2f us/sample\n", 1e6 * seconds / kN);
  EXPECT_NEAR(sum / kN, 0.0, 5 * 1000 / std::sqrt(kN));
  EXPECT_NEAR(sum2 / kN / 1e6, 1.0, 5 * std::sqrt(2.0 / kN));
  EXPECT_NEAR(static_cast<double>(within) / kN, 0.682689, 0.006);  // edge effect ~2.4e-4
}

TEST(DiscreteGaussianTest, ExtremeVarianceStillSamples) {
  // The largest allowed variance exercises the multi-precision path.
  auto sampler = DiscreteGaussianSampler::Create(DiscreteGaussianSampler::kMaxPart, 1);
  ASSERT_TRUE(sampler.ok());
  SecureRng rng = Rng(5);
  double sum2 = 0;
  for (int i = 0; i < 2000; ++i) {
    const double x = static_cast<double>(sampler->Sample(rng));
    sum2 += x * x;
  }
  EXPECT_NEAR(sum2 / 2000 / 0x1.0p62, 1.0, 0.2);
  auto tiny = DiscreteGaussianSampler::Create(1, DiscreteGaussianSampler::kMaxPart);
  ASSERT_TRUE(tiny.ok());
  for (int i = 0; i < 100; ++i) EXPECT_EQ(tiny->Sample(rng), 0);
}

TEST(DiscreteGaussianTest, FromStddevRoundsVarianceUp) {
  auto s = DiscreteGaussianSampler::CreateFromStddev(0.1);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->sigma2_denominator(), uint64_t{1} << 20);
  EXPECT_GE(s->sigma2(), 0.01);
  EXPECT_LT(s->sigma2() - 0.01, 1.0 / (1 << 20) + 1e-18);
  auto exact = DiscreteGaussianSampler::CreateFromStddev(3.0);
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(exact->sigma2_numerator(), 9u << 20);
  EXPECT_FALSE(DiscreteGaussianSampler::CreateFromStddev(0.0).ok());
  EXPECT_FALSE(DiscreteGaussianSampler::CreateFromStddev(1e7).ok());
  EXPECT_FALSE(DiscreteGaussianSampler::CreateFromStddev(std::nan("")).ok());
}

TEST(DiscreteGaussianTest, RejectsBadVariances) {
  EXPECT_FALSE(DiscreteGaussianSampler::Create(0, 1).ok());
  EXPECT_FALSE(DiscreteGaussianSampler::Create(1, 0).ok());
  EXPECT_FALSE(DiscreteGaussianSampler::Create(DiscreteGaussianSampler::kMaxPart + 1, 1).ok());
}

TEST(DiscreteGaussianTest, AddNoiseWrapsModulo2To64) {
  auto sampler = DiscreteGaussianSampler::Create(100, 1);
  ASSERT_TRUE(sampler.ok());
  SecureRng a = Rng(8);
  SecureRng b = Rng(8);
  std::vector<uint64_t> values(1000, 0);
  sampler->AddNoise(values, a);
  for (uint64_t v : values) EXPECT_EQ(static_cast<int64_t>(v), sampler->Sample(b));
}

}  // namespace
}  // namespace fedattn::dp
