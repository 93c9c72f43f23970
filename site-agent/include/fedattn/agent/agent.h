// The site agent's main loop: register with the coordinator (dialling out only, reconnecting
// with backoff and saying why a connection fails), then heartbeat and long-poll for tasks and
// hand each task to the handler registered for its kind.
#pragma once

#include <atomic>
#include <functional>
#include <thread>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "fedattn/agent/agent_options.h"
#include "fedattn/agent/backoff.h"
#include "fedattn/agent/coordinator_link.h"

namespace fedattn::agent {

// Runs one task (on a worker thread, while the agent keeps heartbeating); an error is logged and
// reported to the coordinator (ReportTask FAILED), and the agent goes on with the next task.
using TaskHandler = std::function<absl::Status(const v1::Task& task)>;

class Agent {
 public:
  // Borrows `link`, which must outlive the agent.
  Agent(AgentOptions options, CoordinatorLink* link, uint32_t world_size = 1);
  ~Agent();  // stops, and waits for a running task to return

  void SetTaskHandler(const std::string& kind, TaskHandler handler) { handlers_[kind] = std::move(handler); }

  // Runs until Stop(). Returns OK after Stop(), PERMISSION_DENIED / INVALID_ARGUMENT when the
  // coordinator refuses this site for a reason retrying cannot fix (acting under another name).
  [[nodiscard]] absl::Status Run();

  // One registration attempt, with the failure explained (for `fedattn-agent check`).
  [[nodiscard]] absl::StatusOr<v1::RegisterResponse> RegisterOnce();

  // Thread-safe; wakes the loop from any wait.
  void Stop() {
    if (!stop_.HasBeenNotified()) stop_.Notify();
  }

 private:
  // Heartbeats and pulls tasks until the connection breaks (returns its status) or Stop().
  absl::Status Serve(int64_t heartbeat_interval_ms);
  void HandleTask(const v1::Task& task);
  // Logs a failure: the first time a reason appears at warning level, repeats at debug level.
  void ReportFailure(const absl::Status& status);
  bool Sleep(absl::Duration duration) { return !stop_.WaitForNotificationWithTimeout(duration); }

  AgentOptions options_;
  CoordinatorLink* link_;
  uint32_t world_size_;
  Backoff backoff_;
  std::map<std::string, TaskHandler> handlers_;
  // One task at a time runs on worker_, while Serve() keeps heartbeating.
  std::thread worker_;
  std::atomic<bool> busy_{false};
  std::string task_kind_;  // written before busy_ is set, read while it is
  std::string last_failure_;
  absl::Notification stop_;
};

}  // namespace fedattn::agent
