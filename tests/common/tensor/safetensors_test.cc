#include "fedattn/tensor/safetensors.h"

#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/temp_dir.h"

namespace fedattn {
namespace {

using ::testing::HasSubstr;

TensorBuffer Floats(std::string name, std::vector<int64_t> shape, std::vector<float> values) {
  TensorBuffer t;
  t.name = std::move(name);
  t.dtype = DType::kF32;
  t.shape = std::move(shape);
  t.data.resize(values.size() * 4);
  std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

std::vector<TensorBuffer> Sample() {
  TensorBuffer ids;
  ids.name = "ids";
  ids.dtype = DType::kI64;
  ids.shape = {2};
  ids.data.assign(16, 0);
  ids.data[0] = 7;
  return {Floats("layer.weight", {2, 3}, {1, 2, 3, 4, 5, 6}), Floats("bias", {3}, {-1, 0, 1}), ids,
          Floats("scalar", {}, {42})};
}

// The header is JSON: patch it in place (same length) to build broken files.
std::string Patched(std::string bytes, const std::string& from, const std::string& to) {
  const size_t at = bytes.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  bytes.replace(at, from.size(), to);
  return bytes;
}

TEST(SafetensorsTest, RoundTripKeepsNamesShapesDataAndMetadata) {
  testing::TempDir dir;
  ASSERT_TRUE(SaveSafetensors(dir / "m.safetensors", Sample(), {{"format", "pt"}}).ok());
  auto file = LoadSafetensors(dir / "m.safetensors");
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ(file->tensors.size(), 4u);
  const auto expected = Sample();
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(file->tensors[i].name, expected[i].name);
    EXPECT_EQ(file->tensors[i].dtype, expected[i].dtype);
    EXPECT_EQ(file->tensors[i].shape, expected[i].shape);
    EXPECT_EQ(file->tensors[i].data, expected[i].data);
  }
  EXPECT_EQ(file->metadata.at("format"), "pt");
  EXPECT_EQ(file->metadata.at(kChecksumKey).size(), 64u);
}

TEST(SafetensorsTest, HeaderFollowsTheFormat) {
  auto bytes = SerializeSafetensors({Floats("w", {2}, {1, 2})});
  ASSERT_TRUE(bytes.ok());
  uint64_t n = 0;
  std::memcpy(&n, bytes->data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes->size(), 8 + n + 8);
  EXPECT_THAT(bytes->substr(8, n), HasSubstr(R"("w":{"data_offsets":[0,8],"dtype":"F32","shape":[2]})"));
}

TEST(SafetensorsTest, FileWithoutChecksumLoads) {
  // As written by the reference implementation: no __metadata__ at all.
  const std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  std::string bytes(8, '\0');
  bytes[0] = static_cast<char>(header.size());
  bytes += header + std::string("\0\0\x80\x3f", 4);
  auto file = ParseSafetensors(bytes, "hub.safetensors");
  ASSERT_TRUE(file.ok()) << file.status();
  float value;
  std::memcpy(&value, file->tensors[0].data.data(), 4);
  EXPECT_EQ(value, 1.0f);
}

TEST(SafetensorsTest, FlippedDataByteIsDataLoss) {
  auto bytes = SerializeSafetensors(Sample());
  ASSERT_TRUE(bytes.ok());
  std::string corrupt = *bytes;
  corrupt[corrupt.size() - 1] ^= 0x01;
  auto file = ParseSafetensors(corrupt, "m.safetensors");
  EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(file.status().message(), HasSubstr("m.safetensors: checksum mismatch"));
}

TEST(SafetensorsTest, TruncatedFileIsDataLoss) {
  auto bytes = SerializeSafetensors(Sample());
  ASSERT_TRUE(bytes.ok());
  for (size_t keep : {size_t{0}, size_t{5}, size_t{20}, bytes->size() - 3}) {
    auto file = ParseSafetensors(bytes->substr(0, keep), "cut.safetensors");
    EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss) << keep << ": " << file.status();
    EXPECT_THAT(file.status().message(), HasSubstr("cut.safetensors: truncated"));
  }
}

TEST(SafetensorsTest, BadHeadersNameTheTensor) {
  auto bytes = SerializeSafetensors({Floats("w", {2}, {1, 2}), Floats("v", {1}, {3})});
  ASSERT_TRUE(bytes.ok());
  struct Case {
    std::string from, to, message;
  } cases[] = {
      {R"("dtype":"F32","shape":[2])", R"("dtype":"F99","shape":[2])", "tensor 'w': unknown dtype 'F99'"},
      {R"("shape":[2])", R"("shape":[3])", "tensor 'w': data_offsets [0, 8] do not hold 3 elements"},
      {R"("data_offsets":[8,12])", R"("data_offsets":[4,12])", "do not hold 1 elements"},
      {R"("data_offsets":[0,8])", R"("data_offsets":[0,8]})", "header is not a JSON object"},
  };
  for (const Case& c : cases) {
    auto file = ParseSafetensors(Patched(*bytes, c.from, c.to), "bad.safetensors");
    EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument) << c.from;
    EXPECT_THAT(file.status().message(), HasSubstr(c.message)) << file.status();
  }
}

TEST(SafetensorsTest, RejectsDuplicateAndInconsistentTensors) {
  EXPECT_THAT(SerializeSafetensors({Floats("w", {1}, {1}), Floats("w", {1}, {2})}).status().message(),
              HasSubstr("duplicate tensor name 'w'"));
  TensorBuffer bad = Floats("short", {3}, {1, 2});
  EXPECT_EQ(SerializeSafetensors({bad}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SafetensorsTest, MissingFileIsNotFound) {
  testing::TempDir dir;
  EXPECT_EQ(LoadSafetensors(dir / "absent.safetensors").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace fedattn
