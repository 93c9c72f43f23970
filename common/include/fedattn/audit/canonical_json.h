// Canonical JSON: the exact bytes that the audit trail's hashes and signatures cover, so that
// anyone can re-serialise a parsed entry and get the same bytes back, in any language.
//
// The scheme is RFC 8785 (JSON Canonicalization Scheme): no whitespace, object members sorted
// by their UTF-16 code units, strings with the minimal escapes, numbers as ECMAScript's
// Number.prototype.toString writes them (shortest round-trip digits).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace fedattn::audit {

// RFC 8785 serialisation of `value`. Errors: INVALID_ARGUMENT for a non-finite number, an
// integer beyond 2^53 (not exactly representable as an IEEE double), or a string that is not
// valid UTF-8.
[[nodiscard]] absl::StatusOr<std::string> CanonicalJson(const nlohmann::json& value);

// A finite double as RFC 8785 §3.2.2.3 (ECMAScript Number::toString) writes it: 1e+21, 1e-7,
// 0.000001, 123.456, -0 as 0.
std::string FormatJsonNumber(double value);

// Parses `text` and checks that it is already canonical (byte for byte). Errors name what is
// wrong: INVALID_ARGUMENT for text that is not JSON or not in canonical form.
[[nodiscard]] absl::StatusOr<nlohmann::json> ParseCanonicalJson(absl::string_view text);

}  // namespace fedattn::audit
