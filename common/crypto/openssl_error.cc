#include "fedattn/crypto/openssl_error.h"

#include <openssl/err.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace fedattn::crypto {

std::string DrainOpenSslErrors() {
  std::string reasons;
  unsigned long code = 0;
  while ((code = ERR_get_error()) != 0) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    const char* reason = ERR_reason_error_string(code);
    if (!reasons.empty()) reasons += "; ";
    reasons += reason != nullptr ? reason : buffer;
  }
  return reasons;
}

absl::Status OpenSslError(absl::string_view what, absl::StatusCode code) {
  std::string reasons = DrainOpenSslErrors();
  if (reasons.empty()) reasons = "unknown OpenSSL error";
  return absl::Status(code, absl::StrCat(what, ": ", reasons));
}

}  // namespace fedattn::crypto
