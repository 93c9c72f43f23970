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

// Writes `data` to `path` atomically: a temporary file beside it, created with `mode`
// (so a private key is never readable by others, not even briefly), fsync'd, then renamed.
[[nodiscard]] absl::Status WriteFileAtomic(const std::filesystem::path& path, absl::string_view data,
                                           mode_t mode = 0644);

// Creates `dir` and its parents if missing; new directories get `mode`.
[[nodiscard]] absl::Status EnsureDirectory(const std::filesystem::path& dir, mode_t mode = 0755);

}  // namespace fedattn
