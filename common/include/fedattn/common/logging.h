// Process-wide logging on spdlog. Library code logs through spdlog's default logger; include
// this header rather than spdlog's so absl::string_view (Debian's Abseil has its own) formats.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "spdlog/spdlog.h"

template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  auto format(absl::string_view text, fmt::format_context& ctx) const {
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(text.data(), text.size()), ctx);
  }
};

namespace fedattn {

// Sets up the default logger for a binary: coloured stderr, the given level
// ("trace", "debug", "info", "warn", "error", "off"). INVALID_ARGUMENT for an unknown level.
[[nodiscard]] absl::Status InitLogging(absl::string_view process_name, absl::string_view level);

}  // namespace fedattn
