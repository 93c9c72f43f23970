#include "fedattn/coordinator/upload_spool.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace fedattn::coordinator {
namespace {

absl::Status Errno(absl::string_view what, const std::filesystem::path& path) {
  return absl::InternalError(absl::StrCat(what, " ", path.string(), ": ", std::strerror(errno)));
}

}  // namespace

absl::StatusOr<MappedFile> MappedFile::Open(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open", path);
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    ::close(fd);
    return Errno("cannot stat", path);
  }
  const size_t size = static_cast<size_t>(info.st_size);
  if (size == 0) {
    ::close(fd);
    return MappedFile(nullptr, 0);
  }
  void* data = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (data == MAP_FAILED) return Errno("cannot map", path);
  ::madvise(data, size, MADV_SEQUENTIAL);
  return MappedFile(static_cast<const uint8_t*>(data), size);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

absl::StatusOr<std::unique_ptr<UploadSpool>> UploadSpool::Create(const std::filesystem::path& path,
                                                                 std::string tensor_name, DType dtype,
                                                                 int64_t elements) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("cannot create", path);
  return std::unique_ptr<UploadSpool>(new UploadSpool(path, std::move(tensor_name), dtype, elements, fd));
}

UploadSpool::~UploadSpool() {
  ::close(fd_);
  ::unlink(path_.c_str());
}

absl::Status UploadSpool::BeginTensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                                      uint64_t total_bytes) {
  if (started_) {
    return absl::InvalidArgumentError(absl::StrCat("upload carries a second tensor '", name, "'"));
  }
  if (name != tensor_name_ || dtype != dtype_ || shape != std::vector<int64_t>{elements_}) {
    return absl::InvalidArgumentError(absl::StrCat("upload tensor is '", name, "' ", DTypeName(dtype), " [",
                                                   absl::StrJoin(shape, ","), "], expected '", tensor_name_, "' ",
                                                   DTypeName(dtype_), " [", elements_, "]"));
  }
  started_ = true;
  if (::ftruncate(fd_, static_cast<off_t>(total_bytes)) != 0) return Errno("cannot size", path_);
  return absl::OkStatus();
}

absl::Status UploadSpool::Data(uint64_t offset, std::span<const uint8_t> bytes) {
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::pwrite(fd_, bytes.data() + written, bytes.size() - written,
                               static_cast<off_t>(offset + written));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("cannot write", path_);
    }
    written += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status UploadSpool::EndTensor() {
  complete_ = true;
  return absl::OkStatus();
}

absl::StatusOr<MappedFile> UploadSpool::Map() const {
  if (!complete_) return absl::FailedPreconditionError(absl::StrCat(path_.string(), " is incomplete"));
  return MappedFile::Open(path_);
}

}  // namespace fedattn::coordinator
