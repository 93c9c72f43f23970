// One site's update on its way in. Chunks are written to a file under the state directory as
// they arrive (a TensorSink behind rpc::TensorStreamReader), so a hundred concurrent uploads cost
// the coordinator disk, not memory; a complete, hash-checked upload is then mapped and folded
// into the aggregate one site at a time. An upload that breaks off never touches the aggregate.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "fedattn/rpc/tensor_stream.h"

namespace fedattn::coordinator {

// A read-only mapping of a file; unmapped on destruction.
class MappedFile {
 public:
  [[nodiscard]] static absl::StatusOr<MappedFile> Open(const std::filesystem::path& path);
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&&) = delete;
  ~MappedFile();
  std::span<const uint8_t> bytes() const { return {data_, size_}; }

 private:
  MappedFile(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  const uint8_t* data_;
  size_t size_;
};

class UploadSpool : public rpc::TensorSink {
 public:
  // Accepts exactly one tensor named `tensor_name` of `dtype` with shape [elements].
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<UploadSpool>> Create(const std::filesystem::path& path,
                                                                           std::string tensor_name, DType dtype,
                                                                           int64_t elements);
  ~UploadSpool() override;  // removes the file

  absl::Status BeginTensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                           uint64_t total_bytes) override;
  absl::Status Data(uint64_t offset, std::span<const uint8_t> bytes) override;
  absl::Status EndTensor() override;

  bool complete() const { return complete_; }
  // REQUIRES: complete().
  [[nodiscard]] absl::StatusOr<MappedFile> Map() const;

 private:
  UploadSpool(std::filesystem::path path, std::string tensor_name, DType dtype, int64_t elements, int fd)
      : path_(std::move(path)), tensor_name_(std::move(tensor_name)), dtype_(dtype), elements_(elements), fd_(fd) {}
  std::filesystem::path path_;
  std::string tensor_name_;
  DType dtype_;
  int64_t elements_;
  int fd_;
  bool started_ = false;
  bool complete_ = false;
};

}  // namespace fedattn::coordinator
