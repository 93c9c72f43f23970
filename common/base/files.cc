#include "fedattn/common/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"

namespace fedattn {
namespace {

absl::Status ErrnoError(absl::string_view what, const std::filesystem::path& path) {
  const int err = errno;
  const std::string message = absl::StrCat(what, " ", path.string(), ": ", std::strerror(err));
  if (err == ENOENT) return absl::NotFoundError(message);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(message);
  return absl::InternalError(message);
}

}  // namespace

absl::StatusOr<std::string> ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoError("cannot open", path);
  // A directory opens like a file and then reads as empty: say what it is instead.
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return absl::FailedPreconditionError(absl::StrCat("cannot read ", path.string(), ": it is a directory"));
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return ErrnoError("cannot read", path);
  return std::move(buffer).str();
}

absl::StatusOr<AtomicFileWriter> AtomicFileWriter::Open(const std::filesystem::path& path, mode_t mode) {
  AtomicFileWriter writer;
  writer.path_ = path;
  writer.tmp_ = path.string() + ".tmp";
  writer.fd_ = ::open(writer.tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (writer.fd_ < 0) return ErrnoError("cannot create", writer.tmp_);
  // open() applies the umask; fchmod makes the mode exact (0600 stays 0600, 0644 stays 0644).
  if (::fchmod(writer.fd_, mode) != 0) return ErrnoError("cannot set mode of", writer.tmp_);
  return writer;
}

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& other) noexcept
    : path_(std::move(other.path_)), tmp_(std::move(other.tmp_)), fd_(std::exchange(other.fd_, -1)) {}

AtomicFileWriter& AtomicFileWriter::operator=(AtomicFileWriter&& other) noexcept {
  if (this != &other) {
    Abandon();
    path_ = std::move(other.path_);
    tmp_ = std::move(other.tmp_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

AtomicFileWriter::~AtomicFileWriter() { Abandon(); }

void AtomicFileWriter::Abandon() {
  if (fd_ < 0) return;
  ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_.c_str());
}

absl::Status AtomicFileWriter::Write(absl::string_view data) {
  if (fd_ < 0) return absl::FailedPreconditionError(absl::StrCat(tmp_.string(), " is not open"));
  size_t written = 0;
  while (written < data.size()) {
    const ssize_t n = ::write(fd_, data.data() + written, data.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot write", tmp_);
    }
    written += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status AtomicFileWriter::Commit() {
  if (fd_ < 0) return absl::FailedPreconditionError(absl::StrCat(tmp_.string(), " is not open"));
  if (::fsync(fd_) != 0) return ErrnoError("cannot fsync", tmp_);
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) return ErrnoError("cannot close", tmp_);
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) return ErrnoError("cannot rename into", path_);
  // Make the rename itself durable.
  const std::filesystem::path parent = path_.has_parent_path() ? path_.parent_path() : ".";
  const int dir_fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return absl::OkStatus();
}

absl::Status WriteFileAtomic(const std::filesystem::path& path, absl::string_view data, mode_t mode) {
  absl::StatusOr<AtomicFileWriter> writer = AtomicFileWriter::Open(path, mode);
  if (!writer.ok()) return writer.status();
  absl::Status status = writer->Write(data);
  if (!status.ok()) return status;
  return writer->Commit();
}

absl::Status EnsureDirectory(const std::filesystem::path& dir, mode_t mode) {
  if (dir.empty()) return absl::OkStatus();
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return absl::OkStatus();
  if (std::filesystem::exists(dir, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(dir.string(), " exists and is not a directory"));
  }
  if (dir.has_parent_path() && dir.parent_path() != dir) {
    absl::Status parent = EnsureDirectory(dir.parent_path(), mode);
    if (!parent.ok()) return parent;
  }
  if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) return ErrnoError("cannot create directory", dir);
  return absl::OkStatus();
}

}  // namespace fedattn
