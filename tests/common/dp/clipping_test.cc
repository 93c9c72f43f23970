#include "fedattn/dp/clipping.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace fedattn::dp {
namespace {

TEST(ClippingTest, NormIsAccumulatedInDouble) {
  const std::vector<float> v = {3.0f, 4.0f, 12.0f};
  EXPECT_DOUBLE_EQ(L2Norm(v), 13.0);
  std::vector<float> many(1'000'000, 0.001f);
  EXPECT_NEAR(L2Norm(many), std::sqrt(1e6) * static_cast<double>(0.001f), 1e-10);  // float sums: ~1e-4
}

TEST(ClippingTest, ScalesDownToTheNorm) {
  std::vector<float> v = {3.0f, 4.0f};
  auto r = ClipToNorm(std::span<float>(v), 1.0);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->clipped);
  EXPECT_DOUBLE_EQ(r->norm, 5.0);
  EXPECT_DOUBLE_EQ(r->scale, 0.2);
  EXPECT_FLOAT_EQ(v[0], 0.6f);
  EXPECT_FLOAT_EQ(v[1], 0.8f);
  EXPECT_NEAR(L2Norm(v), 1.0, 1e-6);
}

TEST(ClippingTest, LeavesSmallUpdatesAlone) {
  std::vector<double> v = {0.1, -0.2, 0.3};
  const std::vector<double> before = v;
  auto r = ClipToNorm(std::span<double>(v), 1.0);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->clipped);
  EXPECT_EQ(r->scale, 1.0);
  EXPECT_EQ(v, before);
  std::vector<float> empty;
  EXPECT_EQ(ClipToNorm(std::span<float>(empty), 1.0)->norm, 0.0);
}

TEST(ClippingTest, HugeDoublesDoNotOverflowTheNorm) {
  std::vector<double> v = {3e200, 4e200};
  auto r = ClipToNorm(std::span<double>(v), 2.0);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NEAR(r->norm / 5e200, 1.0, 1e-15);
  EXPECT_NEAR(v[0], 1.2, 1e-12);
  EXPECT_NEAR(v[1], 1.6, 1e-12);
}

TEST(ClippingTest, RejectsNonFiniteUpdatesAndBadNorms) {
  std::vector<float> v = {1.0f, std::numeric_limits<float>::quiet_NaN()};
  EXPECT_EQ(ClipToNorm(std::span<float>(v), 1.0).status().code(),
            absl::StatusCode::kInvalidArgument);
  v = {1.0f, std::numeric_limits<float>::infinity()};
  EXPECT_EQ(ClipToNorm(std::span<float>(v), 1.0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(v[0], 1.0f);  // untouched
  std::vector<float> ok = {1.0f};
  EXPECT_FALSE(ClipToNorm(std::span<float>(ok), 0.0).ok());
  EXPECT_FALSE(ClipToNorm(std::span<float>(ok), -1.0).ok());
  EXPECT_FALSE(ClipToNorm(std::span<float>(ok), std::nan("")).ok());
}

}  // namespace
}  // namespace fedattn::dp
