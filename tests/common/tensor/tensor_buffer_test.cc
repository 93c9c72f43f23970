#include "fedattn/tensor/tensor_buffer.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedattn {
namespace {

TEST(TensorBufferTest, DTypeNamesRoundTrip) {
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16, DType::kF64, DType::kI64, DType::kI32, DType::kU32,
                      DType::kU8}) {
    EXPECT_EQ(*ParseDType(DTypeName(dtype)), dtype);
  }
  EXPECT_FALSE(ParseDType("F8").ok());
  EXPECT_EQ(DTypeSize(DType::kBF16), 2u);
  EXPECT_EQ(DTypeSize(DType::kI64), 8u);
}

TEST(TensorBufferTest, ValidatesSizeAgainstShape) {
  TensorBuffer t{"w", DType::kF32, {2, 3}, std::vector<uint8_t>(24)};
  EXPECT_TRUE(ValidateTensor(t).ok());
  t.data.resize(20);
  const absl::Status status = ValidateTensor(t);
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("tensor 'w' of shape [2,3] and dtype F32 needs 24"));
  EXPECT_FALSE(ValidateTensor(TensorBuffer{"", DType::kF32, {}, std::vector<uint8_t>(4)}).ok());
  EXPECT_FALSE(ValidateTensor(TensorBuffer{"n", DType::kF32, {-1}, {}}).ok());
}

TEST(TensorBufferTest, ScalarAndEmptyShapes) {
  EXPECT_EQ(*NumElements({}), 1u);
  EXPECT_EQ(*NumElements({0, 5}), 0u);
  EXPECT_FALSE(NumElements({INT64_MAX, INT64_MAX}).ok());
}

}  // namespace
}  // namespace fedattn
