#include "fedattn/agent/agent.h"

#include <atomic>
#include <deque>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace fedattn::agent {
namespace {

// A scripted coordinator: registration results are queued; heartbeats and pulls succeed unless
// told otherwise. Thread-safe.
class FakeLink : public CoordinatorLink {
 public:
  absl::StatusOr<v1::RegisterResponse> Register(const v1::RegisterRequest& request) override {
    absl::MutexLock lock(&mu_);
    ++registers_;
    last_site_ = request.site_name();
    if (!register_results_.empty()) {
      absl::Status next = register_results_.front();
      register_results_.pop_front();
      if (!next.ok()) return next;
    }
    v1::RegisterResponse response;
    response.set_coordinator_name("coordinator");
    response.set_heartbeat_interval_ms(10);
    return response;
  }
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request) override {
    absl::MutexLock lock(&mu_);
    ++heartbeats_;
    if (!heartbeat_failure_.ok()) {
      absl::Status failure = heartbeat_failure_;
      heartbeat_failure_ = absl::OkStatus();
      return failure;
    }
    return v1::HeartbeatResponse();
  }
  absl::StatusOr<v1::PullTaskResponse> PullTask(const v1::PullTaskRequest& request) override {
    absl::SleepFor(absl::Milliseconds(2));
    absl::MutexLock lock(&mu_);
    v1::PullTaskResponse response;
    if (!tasks_.empty()) {
      *response.mutable_task() = tasks_.front();
      tasks_.pop_front();
    }
    return response;
  }
  absl::Status Explain(const absl::Status& failure) override {
    absl::MutexLock lock(&mu_);
    ++explained_;
    return failure;
  }

  absl::Mutex mu_;
  std::deque<absl::Status> register_results_ ABSL_GUARDED_BY(mu_);
  absl::Status heartbeat_failure_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::Task> tasks_ ABSL_GUARDED_BY(mu_);
  int registers_ ABSL_GUARDED_BY(mu_) = 0;
  int heartbeats_ ABSL_GUARDED_BY(mu_) = 0;
  int explained_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_site_ ABSL_GUARDED_BY(mu_);
};

AgentOptions Options() {
  AgentOptions options;
  options.site_name = "hospital-a";
  options.coordinator.address = "127.0.0.1:1";
  options.initial_backoff_ms = 1;
  options.max_backoff_ms = 5;
  options.pull_wait_ms = 10;
  return options;
}

// Runs the agent until `done` holds (or 10 s), then stops it; returns Run()'s status.
template <typename Predicate>
absl::Status RunUntil(Agent& agent, FakeLink& link, Predicate done) {
  absl::Status result;
  std::thread runner([&] { result = agent.Run(); });
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    {
      absl::MutexLock lock(&link.mu_);
      if (done()) break;
    }
    absl::SleepFor(absl::Milliseconds(2));
  }
  agent.Stop();
  runner.join();
  return result;
}

TEST(AgentTest, RetriesUntilRegisteredThenHeartbeats) {
  FakeLink link;
  link.register_results_ = {absl::UnavailableError("refused"), absl::UnavailableError("refused")};
  Agent agent(Options(), &link);
  const absl::Status status = RunUntil(agent, link, [&] { return link.heartbeats_ >= 3; });
  EXPECT_TRUE(status.ok()) << status;
  absl::MutexLock lock(&link.mu_);
  EXPECT_EQ(link.registers_, 3);
  EXPECT_EQ(link.explained_, 2);
  EXPECT_EQ(link.last_site_, "hospital-a");
}

TEST(AgentTest, GivesUpWhenTheCoordinatorRefusesItsIdentity) {
  FakeLink link;
  link.register_results_ = {absl::PermissionDeniedError("cannot act as site 'hospital-b'")};
  Agent agent(Options(), &link);
  const absl::Status status = agent.Run();  // returns on its own
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
}

TEST(AgentTest, RegistersAgainWhenTheCoordinatorForgotIt) {
  FakeLink link;
  {
    absl::MutexLock lock(&link.mu_);
    link.heartbeat_failure_ = absl::FailedPreconditionError("site 'hospital-a' has not registered");
  }
  Agent agent(Options(), &link);
  const absl::Status status = RunUntil(agent, link, [&] { return link.registers_ >= 2 && link.heartbeats_ >= 2; });
  EXPECT_TRUE(status.ok());
  absl::MutexLock lock(&link.mu_);
  EXPECT_GE(link.registers_, 2);
}

TEST(AgentTest, RunsTasksThroughTheirHandlerAndSurvivesUnknownKinds) {
  FakeLink link;
  v1::Task unknown;
  unknown.set_kind("teleport");
  v1::Task train;
  train.set_kind("train");
  train.mutable_round()->set_job_id("job-1");
  {
    absl::MutexLock lock(&link.mu_);
    link.tasks_ = {unknown, train};
  }
  // Declared before the agent: the handler runs on the agent's worker thread, which Run() does
  // not join (~Agent does), so what it touches must outlive the agent.
  absl::Mutex ran_mu;
  std::vector<std::string> ran;
  std::atomic<int> handled{0};
  Agent agent(Options(), &link);
  agent.SetTaskHandler("train", [&](const v1::Task& task) {
    absl::MutexLock lock(&ran_mu);
    ran.push_back(task.round().job_id());
    ++handled;
    return absl::InternalError("disk full");  // a failed task is reported, the agent goes on
  });
  // Pulled is not handled: wait for the handler too (ASan found the handler writing to `ran`
  // after the test had checked it and left).
  const absl::Status status = RunUntil(
      agent, link, [&] { return link.tasks_.empty() && handled.load() >= 1 && link.heartbeats_ >= 3; });
  EXPECT_TRUE(status.ok());
  absl::MutexLock lock(&ran_mu);
  EXPECT_EQ(ran, std::vector<std::string>{"job-1"});
}

}  // namespace
}  // namespace fedattn::agent
