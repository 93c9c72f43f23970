#include "fedattn/common/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

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
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return ErrnoError("cannot read", path);
  return std::move(buffer).str();
}

absl::Status WriteFileAtomic(const std::filesystem::path& path, absl::string_view data, mode_t mode) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoError("cannot create", tmp);
  // open() applies the umask; fchmod makes the mode exact (0600 stays 0600, 0644 stays 0644).
  if (::fchmod(fd, mode) != 0) {
    ::close(fd);
    return ErrnoError("cannot set mode of", tmp);
  }
  size_t written = 0;
  while (written < data.size()) {
    const ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return ErrnoError("cannot write", tmp);
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return ErrnoError("cannot fsync", tmp);
  }
  if (::close(fd) != 0) return ErrnoError("cannot close", tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoError("cannot rename into", path);
  // Make the rename itself durable.
  const std::filesystem::path parent = path.has_parent_path() ? path.parent_path() : ".";
  const int dir_fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return absl::OkStatus();
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
