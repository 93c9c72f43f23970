// Process-wide logging on spdlog. Library code logs through spdlog's default logger.
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"
#include "absl/status/status.h"

namespace fedattn {

// Sets up the default logger for a binary: coloured stderr, the given level
// ("trace", "debug", "info", "warn", "error", "off"). INVALID_ARGUMENT for an unknown level.
[[nodiscard]] absl::Status InitLogging(absl::string_view process_name, absl::string_view level);

}  // namespace fedattn
