#include "fedattn/common/stop_signal.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace fedattn {
namespace {

int g_pipe[2] = {-1, -1};

void OnSignal(int signal) {
  const int saved_errno = errno;
  const char byte = static_cast<char>(signal);
  (void)!::write(g_pipe[1], &byte, 1);
  errno = saved_errno;
}

}  // namespace

StopSignalWatcher::StopSignalWatcher(std::function<void(int signal)> on_stop) {
  if (::pipe2(g_pipe, O_CLOEXEC) != 0) std::abort();
  struct sigaction action {};
  action.sa_handler = &OnSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  thread_ = std::thread([on_stop = std::move(on_stop)] {
    char byte = 0;
    ssize_t n = 0;
    do {
      n = ::read(g_pipe[0], &byte, 1);
    } while (n < 0 && errno == EINTR);
    if (n == 1 && byte != 0) on_stop(byte);
  });
}

StopSignalWatcher::~StopSignalWatcher() {
  const char wake = 0;
  (void)!::write(g_pipe[1], &wake, 1);
  thread_.join();
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  ::close(g_pipe[0]);
  ::close(g_pipe[1]);
}

}  // namespace fedattn
