#include "fedattn/models/torch_bridge.h"

#include <torch/torch.h>

#include "gtest/gtest.h"

namespace fedattn::models {
namespace {

TEST(TorchBridgeTest, RoundTripsNonContiguousTensors) {
  torch::manual_seed(0);
  const torch::Tensor original = torch::randn({4, 6}).t();  // transposed: not contiguous
  auto buffer = ToBuffer("w", original);
  ASSERT_TRUE(buffer.ok());
  EXPECT_EQ(buffer->shape, (std::vector<int64_t>{6, 4}));
  EXPECT_EQ(buffer->data.size(), 24u * 4u);
  auto back = FromBuffer(*buffer);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(torch::equal(*back, original));
}

TEST(TorchBridgeTest, KeepsIntegerAndHalfTypes) {
  for (auto type : {torch::kInt64, torch::kInt32, torch::kUInt8, torch::kFloat16, torch::kBFloat16}) {
    const torch::Tensor t = torch::arange(10).to(type);
    auto back = FromBuffer(*ToBuffer("t", t));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->scalar_type(), type);
    EXPECT_TRUE(torch::equal(*back, t));
  }
}

TEST(TorchBridgeTest, RefusesUnsupportedAndInconsistentInput) {
  EXPECT_EQ(ToBuffer("b", torch::ones({2}, torch::kBool)).status().code(), absl::StatusCode::kUnimplemented);
  TensorBuffer broken{"x", DType::kF32, {3}, std::vector<uint8_t>(8)};
  EXPECT_EQ(FromBuffer(broken).status().code(), absl::StatusCode::kInvalidArgument);
  TensorBuffer u32{"x", DType::kU32, {1}, std::vector<uint8_t>(4)};
  EXPECT_EQ(FromBuffer(u32).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fedattn::models
