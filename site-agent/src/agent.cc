#include "fedattn/agent/agent.h"

#include "absl/strings/str_cat.h"
#include "fedattn/config.h"
#include "fedattn/common/logging.h"

namespace fedattn::agent {
namespace {

// Failures that come from who we are, not from the network: retrying cannot fix them.
bool IsPermanent(const absl::Status& status) {
  return status.code() == absl::StatusCode::kPermissionDenied || status.code() == absl::StatusCode::kInvalidArgument;
}

}  // namespace

Agent::Agent(AgentOptions options, CoordinatorLink* link, uint32_t world_size)
    : options_(std::move(options)),
      link_(link),
      world_size_(world_size),
      backoff_(absl::Milliseconds(options_.initial_backoff_ms), absl::Milliseconds(options_.max_backoff_ms)) {}

absl::StatusOr<v1::RegisterResponse> Agent::RegisterOnce() {
  v1::RegisterRequest request;
  request.set_site_name(options_.site_name);
  request.set_agent_version(FEDATTN_VERSION);
  request.set_world_size(world_size_);
  auto response = link_->Register(request);
  if (!response.ok()) return link_->Explain(response.status());
  return response;
}

void Agent::ReportFailure(const absl::Status& status) {
  const std::string reason(status.message());
  if (reason != last_failure_) {
    spdlog::warn("cannot reach coordinator '{}' at {}: {}", options_.coordinator.name, options_.coordinator.address,
                 reason);
    last_failure_ = reason;
  } else {
    spdlog::debug("still cannot reach the coordinator: {}", reason);
  }
}

absl::Status Agent::Run() {
  spdlog::info("site '{}' dialling coordinator '{}' at {}", options_.site_name, options_.coordinator.name,
               options_.coordinator.address);
  while (!stop_.HasBeenNotified()) {
    auto registered = RegisterOnce();
    if (!registered.ok()) {
      if (IsPermanent(registered.status())) {
        spdlog::error("the coordinator refused site '{}': {}", options_.site_name, registered.status().message());
        return registered.status();
      }
      ReportFailure(registered.status());
      if (!Sleep(backoff_.Next())) break;
      continue;
    }
    spdlog::info("registered with coordinator '{}' (FedAttn {}){}", registered->coordinator_name(),
                 registered->coordinator_version(), registered->first_registration() ? " for the first time" : "");
    backoff_.Reset();
    last_failure_.clear();
    const absl::Status lost = Serve(std::max<int64_t>(100, registered->heartbeat_interval_ms()));
    if (stop_.HasBeenNotified()) break;
    if (IsPermanent(lost)) return lost;
    ReportFailure(link_->Explain(lost));
    if (!Sleep(backoff_.Next())) break;
  }
  spdlog::info("agent stopped");
  return absl::OkStatus();
}

absl::Status Agent::Serve(int64_t heartbeat_interval_ms) {
  while (!stop_.HasBeenNotified()) {
    v1::HeartbeatRequest heartbeat;
    heartbeat.set_site_name(options_.site_name);
    heartbeat.set_state(busy_.load() ? task_kind_ : std::string("idle"));
    if (auto beat = link_->Heartbeat(heartbeat); !beat.ok()) return beat.status();
    if (busy_.load()) {
      // A task is running on the worker: keep the site online, take no new task.
      Sleep(absl::Milliseconds(heartbeat_interval_ms));
      continue;
    }
    if (worker_.joinable()) worker_.join();

    v1::PullTaskRequest pull;
    pull.set_site_name(options_.site_name);
    pull.set_wait_ms(static_cast<uint32_t>(std::min(options_.pull_wait_ms, heartbeat_interval_ms)));
    auto pulled = link_->PullTask(pull);
    if (!pulled.ok()) return pulled.status();
    if (pulled->has_task()) {
      busy_ = true;
      task_kind_ = pulled->task().kind();
      worker_ = std::thread([this, task = pulled->task()] {
        HandleTask(task);
        busy_ = false;
      });
    }
  }
  return absl::OkStatus();
}

Agent::~Agent() {
  Stop();
  if (worker_.joinable()) worker_.join();
}

void Agent::HandleTask(const v1::Task& task) {
  const std::string where = absl::StrCat("job '", task.round().job_id(), "' round ", task.round().round());
  auto handler = handlers_.find(task.kind());
  if (handler == handlers_.end()) {
    spdlog::error("{}: this agent cannot run tasks of kind '{}' (FedAttn {})", where, task.kind(), FEDATTN_VERSION);
    return;
  }
  spdlog::info("{}: starting {} task", where, task.kind());
  const absl::Status status = handler->second(task);
  if (!status.ok()) {
    spdlog::error("{}: {} task failed: {}", where, task.kind(), status.message());
    // Tell the coordinator, so the round need not wait for its deadline. Best effort: the round
    // may be over already.
    v1::ReportTaskRequest report;
    *report.mutable_round() = task.round();
    report.set_site_name(options_.site_name);
    report.set_outcome(v1::ReportTaskRequest::FAILED);
    report.set_reason(std::string(status.message()));
    if (absl::Status sent = link_->ReportTask(report); !sent.ok()) {
      spdlog::debug("{}: could not report the failure: {}", where, sent.message());
    }
  } else {
    spdlog::info("{}: {} task done", where, task.kind());
  }
}

}  // namespace fedattn::agent
