#include "fedattn/audit/canonical_json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"

namespace fedattn::audit {
namespace {

constexpr double kMaxExactInteger = 9007199254740992.0;  // 2^53

// Decodes UTF-8 into UTF-16 code units (RFC 8785 §3.2.3 sorts keys by them). Errors on
// malformed UTF-8 (overlong forms, surrogates, truncation).
absl::StatusOr<std::u16string> Utf16Of(absl::string_view text) {
  std::u16string out;
  for (size_t i = 0; i < text.size();) {
    const auto byte = static_cast<uint8_t>(text[i]);
    uint32_t cp = 0;
    int extra = 0;
    if (byte < 0x80) {
      cp = byte;
    } else if ((byte & 0xE0) == 0xC0) {
      cp = byte & 0x1F;
      extra = 1;
    } else if ((byte & 0xF0) == 0xE0) {
      cp = byte & 0x0F;
      extra = 2;
    } else if ((byte & 0xF8) == 0xF0) {
      cp = byte & 0x07;
      extra = 3;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("invalid UTF-8 byte at offset ", i));
    }
    for (int k = 1; k <= extra; ++k) {
      if (i + k >= text.size()) return absl::InvalidArgumentError(absl::StrCat("truncated UTF-8 at offset ", i));
      const auto next = static_cast<uint8_t>(text[i + k]);
      if ((next & 0xC0) != 0x80) return absl::InvalidArgumentError(absl::StrCat("invalid UTF-8 at offset ", i + k));
      cp = (cp << 6) | (next & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return absl::InvalidArgumentError(absl::StrCat("invalid UTF-8 code point at offset ", i));
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out.push_back(static_cast<char16_t>(0xD800 + (cp >> 10)));
      out.push_back(static_cast<char16_t>(0xDC00 + (cp & 0x3FF)));
    } else {
      out.push_back(static_cast<char16_t>(cp));
    }
    i += 1 + extra;
  }
  return out;
}

absl::Status AppendString(const std::string& text, std::string& out) {
  RETURN_IF_ERROR(Utf16Of(text).status());
  out.push_back('"');
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<uint8_t>(c) < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out.push_back(kHex[(c >> 4) & 0xF]);
          out.push_back(kHex[c & 0xF]);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return absl::OkStatus();
}

absl::Status Append(const nlohmann::json& value, std::string& out) {
  switch (value.type()) {
    case nlohmann::json::value_t::null: out += "null"; return absl::OkStatus();
    case nlohmann::json::value_t::boolean: out += value.get<bool>() ? "true" : "false"; return absl::OkStatus();
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: {
      const double number = value.get<double>();
      if (std::fabs(number) > kMaxExactInteger) {
        return absl::InvalidArgumentError(absl::StrCat("integer ", value.dump(), " is beyond 2^53"));
      }
      out += FormatJsonNumber(number);
      return absl::OkStatus();
    }
    case nlohmann::json::value_t::number_float: {
      const double number = value.get<double>();
      if (!std::isfinite(number)) return absl::InvalidArgumentError("JSON has no representation of NaN or infinity");
      out += FormatJsonNumber(number);
      return absl::OkStatus();
    }
    case nlohmann::json::value_t::string: return AppendString(value.get_ref<const std::string&>(), out);
    case nlohmann::json::value_t::array: {
      out.push_back('[');
      bool first = true;
      for (const nlohmann::json& item : value) {
        if (!first) out.push_back(',');
        first = false;
        RETURN_IF_ERROR(Append(item, out));
      }
      out.push_back(']');
      return absl::OkStatus();
    }
    case nlohmann::json::value_t::object: {
      std::vector<std::pair<std::u16string, const std::string*>> keys;
      for (auto it = value.begin(); it != value.end(); ++it) {
        ASSIGN_OR_RETURN(std::u16string key, Utf16Of(it.key()));
        keys.emplace_back(std::move(key), &it.key());
      }
      std::sort(keys.begin(), keys.end());
      out.push_back('{');
      bool first = true;
      for (const auto& [unused, key] : keys) {
        if (!first) out.push_back(',');
        first = false;
        RETURN_IF_ERROR(AppendString(*key, out));
        out.push_back(':');
        RETURN_IF_ERROR(Append(value.at(*key), out));
      }
      out.push_back('}');
      return absl::OkStatus();
    }
    default: return absl::InvalidArgumentError("JSON value of an unsupported type (binary or discarded)");
  }
}

}  // namespace

std::string FormatJsonNumber(double value) {
  if (value == 0) return "0";  // RFC 8785: -0 serialises as 0
  std::string out;
  if (value < 0) {
    out.push_back('-');
    value = -value;
  }
  // Shortest digits that round-trip (std::to_chars without a precision), in d.ddde±x form.
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::scientific);
  const std::string scientific(buffer, result.ptr);
  const size_t e = scientific.find('e');
  std::string digits;
  for (const char c : scientific.substr(0, e)) {
    if (c != '.') digits.push_back(c);
  }
  const int k = static_cast<int>(digits.size());
  const int n = std::stoi(scientific.substr(e + 1)) + 1;  // value = 0.digits × 10^n
  // ECMAScript Number::toString, steps 6-10 (ECMA-262 §6.1.6.1.20).
  if (k <= n && n <= 21) {
    out += digits + std::string(n - k, '0');
  } else if (0 < n && n <= 21) {
    out += digits.substr(0, n) + "." + digits.substr(n);
  } else if (-6 < n && n <= 0) {
    out += "0." + std::string(-n, '0') + digits;
  } else {
    out.push_back(digits[0]);
    if (k > 1) out += "." + digits.substr(1);
    out += absl::StrCat("e", n - 1 >= 0 ? "+" : "-", std::abs(n - 1));
  }
  return out;
}

absl::StatusOr<std::string> CanonicalJson(const nlohmann::json& value) {
  std::string out;
  RETURN_IF_ERROR(Append(value, out));
  return out;
}

absl::StatusOr<nlohmann::json> ParseCanonicalJson(absl::string_view text) {
  nlohmann::json value = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return absl::InvalidArgumentError("not valid JSON");
  ASSIGN_OR_RETURN(std::string canonical, CanonicalJson(value));
  if (canonical != text) {
    size_t at = 0;
    while (at < canonical.size() && at < text.size() && canonical[at] == text[at]) ++at;
    return absl::InvalidArgumentError(absl::StrCat("not in canonical JSON form (RFC 8785): differs at byte ", at));
  }
  return value;
}

}  // namespace fedattn::audit
