#include "fedattn/rpc/tensor_stream.h"

#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedattn::rpc {
namespace {

using ::testing::HasSubstr;

TensorBuffer RandomTensor(const std::string& name, std::vector<int64_t> shape, uint32_t seed) {
  TensorBuffer t{name, DType::kF32, std::move(shape), {}};
  t.data.resize(*NumElements(t.shape) * 4);
  std::mt19937 rng(seed);
  for (uint8_t& b : t.data) b = static_cast<uint8_t>(rng());
  return t;
}

std::vector<v1::TensorChunk> AllChunks(TensorChunker chunker) {
  std::vector<v1::TensorChunk> chunks;
  v1::TensorChunk chunk;
  while (chunker.Next(&chunk)) chunks.push_back(chunk);
  return chunks;
}

TEST(TensorStreamTest, RoundTripsAcrossChunkBoundaries) {
  const std::vector<TensorBuffer> tensors = {RandomTensor("a", {10, 10}, 1), RandomTensor("b", {}, 2),
                                             RandomTensor("c", {0}, 3), RandomTensor("d", {33}, 4)};
  auto chunks = AllChunks(*TensorChunker::Create(tensors, /*max_chunk_bytes=*/64));
  EXPECT_EQ(chunks.size(), 7u + 1u + 1u + 3u);
  for (const auto& chunk : chunks) EXPECT_LE(chunk.data().size(), 64u);
  CollectingSink sink;
  TensorStreamReader reader(&sink, StreamLimits{});
  for (const auto& chunk : chunks) ASSERT_TRUE(reader.Add(chunk).ok());
  ASSERT_TRUE(reader.Finish().ok());
  std::vector<TensorBuffer> received = sink.Take();
  ASSERT_EQ(received.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(received[i].name, tensors[i].name);
    EXPECT_EQ(received[i].shape, tensors[i].shape);
    EXPECT_EQ(received[i].data, tensors[i].data);
  }
}

TEST(TensorStreamTest, ResumesAfterABrokenStream) {
  const std::vector<TensorBuffer> tensors = {RandomTensor("a", {40}, 1), RandomTensor("b", {40}, 2)};
  auto chunks = AllChunks(*TensorChunker::Create(tensors, 48));
  CollectingSink sink;
  TensorStreamReader reader(&sink, StreamLimits{});
  for (size_t i = 0; i < 5; ++i) ASSERT_TRUE(reader.Add(chunks[i]).ok());  // breaks inside "b"
  EXPECT_EQ(reader.resume_tensor(), "b");
  EXPECT_FALSE(reader.Finish().ok());
  auto resumed = AllChunks(*TensorChunker::Create(tensors, 48, reader.resume_tensor(), reader.resume_offset()));
  for (const auto& chunk : resumed) ASSERT_TRUE(reader.Add(chunk).ok());
  ASSERT_TRUE(reader.Finish().ok());
  EXPECT_EQ(sink.Take()[1].data, tensors[1].data);
}

TEST(TensorStreamTest, CorruptedDataFailsTheDigest) {
  const std::vector<TensorBuffer> tensors = {RandomTensor("w", {16}, 1)};
  auto chunks = AllChunks(*TensorChunker::Create(tensors, 16));
  (*chunks[1].mutable_data())[0] ^= 1;
  CollectingSink sink;
  TensorStreamReader reader(&sink, StreamLimits{});
  absl::Status status;
  for (const auto& chunk : chunks) status.Update(reader.Add(chunk));
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()), HasSubstr("'w': SHA-256 mismatch"));
}

TEST(TensorStreamTest, RefusesMalformedStreams) {
  const std::vector<TensorBuffer> tensors = {RandomTensor("w", {16}, 1)};
  auto chunks = AllChunks(*TensorChunker::Create(tensors, 16));
  struct Case {
    std::string what;
    std::function<void(std::vector<v1::TensorChunk>*)> mutate;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"gap", [](auto* c) { c->erase(c->begin() + 1); }, "chunk at offset 32, expected 16"},
      {"duplicate tensor", [](auto* c) { auto copy = *c; c->insert(c->end(), copy.begin(), copy.end()); },
       "tensor 'w' sent twice"},
      {"bad dtype", [](auto* c) { (*c)[0].set_dtype("Q7"); }, "unknown dtype 'Q7'"},
      {"size mismatch", [](auto* c) { (*c)[0].set_total_bytes(10); }, "does not match its shape"},
      {"too much data", [](auto* c) { (*c)[3].mutable_data()->append("xx"); }, "more than its 64 bytes"},
      {"interleaved", [](auto* c) { (*c)[1].set_name("v"); }, "arrived while 'w' is incomplete"},
  };
  for (const Case& test : cases) {
    auto mutated = chunks;
    test.mutate(&mutated);
    CollectingSink sink;
    TensorStreamReader reader(&sink, StreamLimits{});
    absl::Status status;
    for (const auto& chunk : mutated) status.Update(reader.Add(chunk));
    EXPECT_THAT(std::string(status.message()), HasSubstr(test.expected)) << test.what;
  }
}

TEST(TensorStreamTest, EnforcesLimits) {
  const std::vector<TensorBuffer> tensors = {RandomTensor("a", {16}, 1), RandomTensor("b", {16}, 2)};
  auto chunks = AllChunks(*TensorChunker::Create(tensors));
  CollectingSink sink;
  TensorStreamReader reader(&sink, StreamLimits{/*max_total_bytes=*/100, /*max_tensors=*/10});
  EXPECT_TRUE(reader.Add(chunks[0]).ok());
  EXPECT_EQ(reader.Add(chunks[1]).code(), absl::StatusCode::kResourceExhausted);
  // A poisoned reader refuses everything after.
  EXPECT_FALSE(reader.Finish().ok());
}

TEST(TensorStreamTest, CollectingSinkDoesNotReserveWhatIsOnlyDeclared) {
  // A first chunk that declares 6 GiB and carries one byte (fuzz/regressions/wire_fuzz/).
  v1::TensorChunk chunk;
  chunk.set_name("w");
  chunk.set_dtype("U8");
  chunk.add_shape(int64_t{6} << 30);
  chunk.set_total_bytes(uint64_t{6} << 30);
  chunk.set_data("x");
  CollectingSink sink;
  TensorStreamReader reader(&sink, StreamLimits{});
  ASSERT_TRUE(reader.Add(chunk).ok());
  EXPECT_FALSE(reader.Finish().ok());
  const std::vector<TensorBuffer> partial = sink.Take();
  ASSERT_EQ(partial.size(), 1u);
  EXPECT_EQ(partial[0].data.size(), 1u);
  EXPECT_LE(partial[0].data.capacity(), kMaxChunkBytes);
}

TEST(TensorStreamTest, ChunkerRefusesBadInput) {
  std::vector<TensorBuffer> twice = {RandomTensor("a", {1}, 1), RandomTensor("a", {1}, 2)};
  EXPECT_THAT(std::string(TensorChunker::Create(twice).status().message()), HasSubstr("appears twice"));
  std::vector<TensorBuffer> one = {RandomTensor("a", {1}, 1)};
  EXPECT_FALSE(TensorChunker::Create(one, kMaxChunkBytes, "zzz", 0).ok());
  EXPECT_FALSE(TensorChunker::Create(one, kMaxChunkBytes, "a", 5).ok());
}

}  // namespace
}  // namespace fedattn::rpc
