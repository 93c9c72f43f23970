// Converts OpenSSL's thread-local error queue into an absl::Status with OpenSSL's reason text.
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"
#include "absl/status/status.h"

namespace fedattn::crypto {

// Drains the error queue: "<what>: <reason>; <reason>…" (or "<what>: unknown OpenSSL error").
[[nodiscard]] absl::Status OpenSslError(absl::string_view what,
                                        absl::StatusCode code = absl::StatusCode::kInternal);

// Drains the error queue into a string without making a Status (for diagnostics).
std::string DrainOpenSslErrors();

}  // namespace fedattn::crypto
