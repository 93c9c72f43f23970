#include "fedattn/common/failpoint.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace fedattn {

#ifdef FEDATTN_FAILPOINTS
namespace {

struct Armed {
  std::string name;
  long hit = 1;  // crash at this hit
};

const Armed* ArmedFailpoint() {
  static const Armed* armed = []() -> const Armed* {
    const char* value = std::getenv("FEDATTN_FAILPOINT");
    if (value == nullptr || *value == '\0') return nullptr;
    auto* armed = new Armed{value, 1};
    if (const size_t at = armed->name.find('@'); at != std::string::npos) {
      armed->hit = std::strtol(armed->name.c_str() + at + 1, nullptr, 10);
      armed->name.resize(at);
    }
    return armed;
  }();
  return armed;
}

}  // namespace

void Failpoint(absl::string_view name) {
  const Armed* armed = ArmedFailpoint();
  if (armed == nullptr || name != armed->name) return;
  static std::atomic<long> hits{0};
  if (++hits != armed->hit) return;
  std::fprintf(stderr, "failpoint %s: ending the process as kill -9 would\n", armed->name.c_str());
  std::fflush(stderr);
  _exit(137);
}
#else
void Failpoint(absl::string_view) {}
#endif

}  // namespace fedattn
