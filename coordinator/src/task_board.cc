#include "fedattn/coordinator/task_board.h"

namespace fedattn::coordinator {

void TaskBoard::Post(const std::string& site, v1::Task task) {
  absl::MutexLock lock(&mu_);
  queues_[site].push_back(std::move(task));
}

bool TaskBoard::PostIfEmpty(const std::string& site, v1::Task task) {
  absl::MutexLock lock(&mu_);
  std::deque<v1::Task>& queue = queues_[site];
  if (!queue.empty()) return false;
  queue.push_back(std::move(task));
  return true;
}

std::optional<v1::Task> TaskBoard::Wait(const std::string& site, absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (closed_) return true;
    auto it = queues_.find(site);
    return it != queues_.end() && !it->second.empty();
  };
  mu_.AwaitWithDeadline(absl::Condition(&ready), deadline);
  if (closed_) return std::nullopt;
  auto it = queues_.find(site);
  if (it == queues_.end() || it->second.empty()) return std::nullopt;
  v1::Task task = std::move(it->second.front());
  it->second.pop_front();
  return task;
}

void TaskBoard::Clear(const std::string& site) {
  absl::MutexLock lock(&mu_);
  queues_.erase(site);
}

void TaskBoard::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

}  // namespace fedattn::coordinator
