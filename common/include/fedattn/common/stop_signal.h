// Turns SIGINT and SIGTERM into a clean stop of a long-running process, whichever of its threads
// (LibTorch and gRPC start their own) the kernel delivers them to.
#pragma once

#include <functional>
#include <thread>

namespace fedattn {

// Installs handlers for SIGINT and SIGTERM that only write to a pipe (async-signal-safe); a
// watcher thread reads it and runs `on_stop(signal)` once. At most one watcher per process.
class StopSignalWatcher {
 public:
  explicit StopSignalWatcher(std::function<void(int signal)> on_stop);
  // Wakes and joins the watcher thread (without calling on_stop if no signal came).
  ~StopSignalWatcher();
  StopSignalWatcher(const StopSignalWatcher&) = delete;
  StopSignalWatcher& operator=(const StopSignalWatcher&) = delete;

 private:
  std::thread thread_;
};

}  // namespace fedattn
