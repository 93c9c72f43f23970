// Work waiting for each site, handed out by the long-polling PullTask call.
// Thread-safe.
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fedattn/v1/fedattn.pb.h"

namespace fedattn::coordinator {

class TaskBoard {
 public:
  // Queues `task` for `site` and wakes a waiting PullTask.
  void Post(const std::string& site, v1::Task task);

  // Queues `task` for `site` only if nothing is queued for it; returns whether it did.
  bool PostIfEmpty(const std::string& site, v1::Task task);

  // The oldest task for `site`, waiting until `deadline` for one; nullopt on timeout or Close().
  std::optional<v1::Task> Wait(const std::string& site, absl::Time deadline);

  // Drops every queued task for `site` (the site was deselected or its round aborted).
  void Clear(const std::string& site);

  // Wakes every waiter with nothing (server shutdown); later waits return at once.
  void Close();

 private:
  absl::Mutex mu_;
  std::map<std::string, std::deque<v1::Task>> queues_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace fedattn::coordinator
