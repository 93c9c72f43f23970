// The global model as the coordinator holds it: every tensor of the job's model spec, float32,
// back to back in one buffer in spec order. Downloads stream straight from that buffer (no copy
// per site), a fully trained model's update applies to it in place, and a checkpoint is written
// from it without a second copy: the coordinator's memory stays about one model plus the
// strategy's accumulator, whatever the number of sites.
//
// Thread-compatible; the round engine replaces the model only between rounds, while no download
// of it is in flight.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "fedattn/crypto/digest.h"
#include "fedattn/models/model_spec.h"
#include "fedattn/rpc/tensor_stream.h"
#include "fedattn/tensor/tensor_buffer.h"

namespace fedattn::coordinator {

class GlobalModel {
 public:
  GlobalModel() = default;
  // Checks that `tensors` are exactly the spec's (names, shapes, float32; any order) and copies
  // them into one buffer. INVALID_ARGUMENT naming the first tensor that differs, for `source`.
  [[nodiscard]] static absl::StatusOr<GlobalModel> FromTensors(const models::ModelSpec& spec,
                                                               std::span<const TensorBuffer> tensors,
                                                               absl::string_view source);
  // A checkpoint written by Save().
  [[nodiscard]] static absl::StatusOr<GlobalModel> Load(const models::ModelSpec& spec,
                                                        const std::filesystem::path& path);
  // Writes a safetensors file atomically (temporary file, fsync, rename), tensor by tensor.
  [[nodiscard]] absl::Status Save(const std::filesystem::path& path) const;

  // The tensors, viewing this model's buffer, with their hashes (for download streams).
  std::vector<rpc::TensorView> Views() const;
  // SHA-256 over the tensors' names and hashes in spec order: the model's identity in tasks,
  // round records and ledgers (docs/protocol.md).
  const crypto::Sha256Digest& digest() const { return digest_; }

  // Length of a flat update: the trainable tensors in spec order.
  int64_t num_trainable() const { return num_trainable_; }
  // The trainable values, in place, when they are one contiguous range (full fine-tuning).
  std::span<float> ContiguousTrainable();
  void GatherTrainable(std::span<float> out) const;
  // Writes `values` back into the trainable tensors and recomputes the hashes.
  void ScatterTrainable(std::span<const float> values);
  // Recomputes tensor hashes and the digest after the buffer changed in place.
  void Rehash();

 private:
  struct Entry {
    models::TensorSpec spec;
    int64_t offset = 0;  // in floats
    crypto::Sha256Digest sha256{};
  };
  std::vector<Entry> entries_;
  std::vector<float> values_;
  std::vector<std::pair<int64_t, int64_t>> trainable_ranges_;  // [offset, count), merged
  int64_t num_trainable_ = 0;
  crypto::Sha256Digest digest_{};
};

}  // namespace fedattn::coordinator
