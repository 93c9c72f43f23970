// Small file-system helpers with absl::Status errors that name the path.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fedattn {

// Reads a whole file. NOT_FOUND if it does not exist; the message names the path.
[[nodiscard]] absl::StatusOr<std::string> ReadFile(const std::filesystem::path& path);

// Writes a file in pieces so that readers see either the old file or the whole new one: data
// goes to PATH.tmp; Commit() fsyncs it, renames it over PATH and fsyncs the directory. Destroying
// an uncommitted writer removes PATH.tmp.
class AtomicFileWriter {
 public:
  [[nodiscard]] static absl::StatusOr<AtomicFileWriter> Open(const std::filesystem::path& path,
                                                             mode_t mode = 0644);
  AtomicFileWriter(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter& operator=(AtomicFileWriter&& other) noexcept;
  ~AtomicFileWriter();
  [[nodiscard]] absl::Status Write(absl::string_view data);
  [[nodiscard]] absl::Status Commit();

 private:
  AtomicFileWriter() = default;
  void Abandon();
  std::filesystem::path path_, tmp_;
  int fd_ = -1;
};

// Writes `data` to `path` atomically: a temporary file beside it, created with `mode`
// (so a private key is never readable by others, not even briefly), fsync'd, then renamed.
[[nodiscard]] absl::Status WriteFileAtomic(const std::filesystem::path& path, absl::string_view data,
                                           mode_t mode = 0644);

// Creates `dir` and its parents if missing; new directories get `mode`.
[[nodiscard]] absl::Status EnsureDirectory(const std::filesystem::path& dir, mode_t mode = 0755);

}  // namespace fedattn
