// Can ThreadSanitizer see this machine's abseil locks? Two threads increment a counter under an
// absl::Mutex: correct code. Built with -fsanitize=thread against the system abseil, it runs
// clean only if abseil itself was built with ThreadSanitizer; Debian's libabsl is not, so TSan
// never sees the lock and reports a race on every absl::Mutex-guarded field, ours included.
// scripts/test.sh --sanitize runs this first for FEDATTN_SANITIZE=thread and stops, saying why,
// instead of burying real reports under false ones.
#include <thread>

#include "absl/synchronization/mutex.h"

namespace {

absl::Mutex mu;
int counter ABSL_GUARDED_BY(mu) = 0;

void Count() {
  for (int i = 0; i < 10000; ++i) {
    absl::MutexLock lock(&mu);
    ++counter;
  }
}

}  // namespace

int main() {
  std::thread other(Count);
  Count();
  other.join();
  absl::MutexLock lock(&mu);
  return counter == 20000 ? 0 : 1;
}
