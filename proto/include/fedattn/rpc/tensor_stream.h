// Chunked tensor streams (docs/protocol.md, "Tensor streams"): a set of named tensors travels as
// TensorChunk messages of at most kMaxChunkBytes, tensor by tensor, each tensor's last chunk
// carrying the SHA-256 of its bytes. No message-size limit applies to the whole model, a dropped
// download resumes at (tensor, offset), and a receiver can consume chunks as they arrive.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fedattn/crypto/digest.h"
#include "fedattn/tensor/tensor_buffer.h"
#include "fedattn/v1/fedattn.pb.h"

namespace fedattn::rpc {

inline constexpr size_t kMaxChunkBytes = 4 << 20;

// A tensor whose bytes live elsewhere (a flat model buffer, a mapped file): what a chunker
// streams without copying. `sha256`, when known, saves hashing the bytes again.
struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::span<const uint8_t> data;
  std::optional<crypto::Sha256Digest> sha256;
};
TensorView ViewOf(const TensorBuffer& tensor);

// Produces the chunks of `tensors` in order. The tensors' bytes must outlive the chunker.
class TensorChunker {
 public:
  // Starts at the beginning, or at `resume_offset` bytes into the tensor named `resume_tensor`.
  // INVALID_ARGUMENT for an invalid tensor, a duplicate name, or a resume point that does not exist.
  [[nodiscard]] static absl::StatusOr<TensorChunker> Create(std::span<const TensorBuffer> tensors,
                                                            size_t max_chunk_bytes = kMaxChunkBytes,
                                                            const std::string& resume_tensor = "",
                                                            uint64_t resume_offset = 0);
  [[nodiscard]] static absl::StatusOr<TensorChunker> Create(std::vector<TensorView> tensors,
                                                            size_t max_chunk_bytes = kMaxChunkBytes,
                                                            const std::string& resume_tensor = "",
                                                            uint64_t resume_offset = 0);
  // Fills `chunk` with the next chunk; false when the stream is complete.
  bool Next(v1::TensorChunk* chunk);

 private:
  TensorChunker(std::vector<TensorView> tensors, size_t max_chunk_bytes)
      : tensors_(std::move(tensors)), max_chunk_bytes_(max_chunk_bytes) {}
  std::vector<TensorView> tensors_;
  size_t max_chunk_bytes_;
  std::vector<crypto::Sha256Digest> digests_;
  size_t index_ = 0;
  uint64_t offset_ = 0;
  bool header_sent_ = false;
};

// What a receiver does with verified stream content.
class TensorSink {
 public:
  virtual ~TensorSink() = default;
  virtual absl::Status BeginTensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                                   uint64_t total_bytes) = 0;
  virtual absl::Status Data(uint64_t offset, std::span<const uint8_t> bytes) = 0;
  // Called once the tensor's SHA-256 has matched.
  virtual absl::Status EndTensor() = 0;
};

struct StreamLimits {
  uint64_t max_total_bytes = 8ull << 30;  // all tensors together
  uint32_t max_tensors = 100000;
};

// Checks a chunk stream (order, offsets, sizes, limits, SHA-256 per tensor) and feeds a sink.
// After an error the reader is poisoned: the stream must be discarded. Not thread-safe.
class TensorStreamReader {
 public:
  TensorStreamReader(TensorSink* sink, StreamLimits limits) : sink_(sink), limits_(limits) {}

  // INVALID_ARGUMENT / DATA_LOSS naming the tensor and what was wrong.
  [[nodiscard]] absl::Status Add(const v1::TensorChunk& chunk);
  // OK only when no tensor is half-received.
  [[nodiscard]] absl::Status Finish() const;

  // Where a broken stream can resume: the tensor in progress and the bytes already received.
  const std::string& resume_tensor() const { return current_name_; }
  uint64_t resume_offset() const { return received_; }
  uint32_t tensors_completed() const { return tensors_completed_; }
  uint64_t total_bytes() const { return total_bytes_; }

 private:
  TensorSink* sink_;
  StreamLimits limits_;
  absl::Status poisoned_;
  std::string current_name_;
  uint64_t expected_bytes_ = 0;
  uint64_t received_ = 0;
  crypto::Sha256Hasher hasher_;
  std::vector<std::string> seen_names_;
  uint32_t tensors_completed_ = 0;
  uint64_t total_bytes_ = 0;
};

// A sink that keeps every tensor in memory (model downloads at a site).
class CollectingSink : public TensorSink {
 public:
  absl::Status BeginTensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                           uint64_t total_bytes) override;
  absl::Status Data(uint64_t offset, std::span<const uint8_t> bytes) override;
  absl::Status EndTensor() override;
  std::vector<TensorBuffer> Take() { return std::move(tensors_); }

 private:
  std::vector<TensorBuffer> tensors_;
};

}  // namespace fedattn::rpc
