#include "fedattn/dp/gaussian_noise.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace fedattn::dp {
namespace {

class GaussianNoiseTest : public ::testing::TestWithParam<double> {};

TEST_P(GaussianNoiseTest, MomentsMatch) {
  const double stddev = GetParam();
  auto rng = SecureRng::CreateForTesting(2024);
  ASSERT_TRUE(rng.ok());
  constexpr int kN = 1'000'001;  // odd: covers the unpaired last element
  std::vector<double> v(kN, 10.0);
  ASSERT_TRUE(AddGaussianNoise(std::span<double>(v), stddev, *rng).ok());
  double sum = 0, sum2 = 0, sum4 = 0;
  int within_one = 0;
  for (double x : v) {
    const double z = (x - 10.0) / stddev;
    sum += z;
    sum2 += z * z;
    sum4 += z * z * z * z;
    within_one += std::fabs(z) <= 1.0;
  }
  const double mean = sum / kN;
  const double var = sum2 / kN - mean * mean;
  // Standard errors: mean 1/√n = 0.001, variance √(2/n) = 0.0014, kurtosis √(96/n) ≈ 0.01.
  EXPECT_NEAR(mean, 0.0, 0.005);
  EXPECT_NEAR(var, 1.0, 0.007);
  EXPECT_NEAR(sum4 / kN, 3.0, 0.05);
  EXPECT_NEAR(static_cast<double>(within_one) / kN, 0.682689, 0.003);  // P(|Z| <= 1)
}
INSTANTIATE_TEST_SUITE_P(Stddevs, GaussianNoiseTest, ::testing::Values(0.01, 1.0, 250.0));

TEST(GaussianNoiseFloatTest, FloatBuffersGetNoiseToo) {
  auto rng = SecureRng::CreateForTesting(1);
  ASSERT_TRUE(rng.ok());
  std::vector<float> v(100000, 0.0f);
  ASSERT_TRUE(AddGaussianNoise(std::span<float>(v), 2.0, *rng).ok());
  double sum2 = 0;
  for (float x : v) sum2 += static_cast<double>(x) * x;
  EXPECT_NEAR(sum2 / v.size(), 4.0, 0.1);
}

TEST(GaussianNoiseFloatTest, SameSeedSameNoise) {
  auto a = SecureRng::CreateForTesting(3);
  auto b = SecureRng::CreateForTesting(3);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(SampleStandardGaussian(*a), SampleStandardGaussian(*b));
}

TEST(GaussianNoiseFloatTest, ZeroStddevIsANoOpAndBadStddevIsRejected) {
  auto rng = SecureRng::CreateForTesting(1);
  ASSERT_TRUE(rng.ok());
  std::vector<float> v = {1.0f, 2.0f, 3.0f};
  ASSERT_TRUE(AddGaussianNoise(std::span<float>(v), 0.0, *rng).ok());
  EXPECT_EQ(v, (std::vector<float>{1.0f, 2.0f, 3.0f}));
  EXPECT_EQ(AddGaussianNoise(std::span<float>(v), -1.0, *rng).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(AddGaussianNoise(std::span<float>(v), INFINITY, *rng).ok());
  EXPECT_EQ(v, (std::vector<float>{1.0f, 2.0f, 3.0f}));
}

}  // namespace
}  // namespace fedattn::dp
