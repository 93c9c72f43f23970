// Status helpers shared by the LibTorch sources of fedattn_models (internal).
#pragma once

#include <c10/util/Exception.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace fedattn::models {

// A LibTorch exception as INTERNAL "<what>: <torch's message>", without the C++ backtrace.
inline absl::Status FromTorch(const c10::Error& e, absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", e.what_without_backtrace()));
}

// `status` with "<prefix>: " before its message (OK stays OK).
inline absl::Status Prefixed(const absl::Status& status, absl::string_view prefix) {
  return status.ok() ? status : absl::Status(status.code(), absl::StrCat(prefix, ": ", status.message()));
}

}  // namespace fedattn::models
