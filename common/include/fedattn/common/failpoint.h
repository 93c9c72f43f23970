// Crash points for the fault-injection tests: Failpoint("name") ends the process on the spot,
// as kill -9 would (no destructors, no flushing, exit status 137), when the environment variable
// FEDATTN_FAILPOINT names it ("name", or "name@N" for its N-th hit). The check is compiled in
// only with the CMake option FEDATTN_FAILPOINTS (on by default, off in Release builds); without
// it Failpoint does nothing.
#pragma once

#include "absl/strings/string_view.h"

namespace fedattn {

void Failpoint(absl::string_view name);

}  // namespace fedattn
