// A CoordinatorLink (test only) that loses or repeats messages between an agent and the
// coordinator, as a bad network would, around a real link (GrpcCoordinatorLink):
//   kDropRequest   the call never reaches the coordinator; the agent sees UNAVAILABLE
//   kDropResponse  the coordinator handles the call, the answer is lost; the agent sees UNAVAILABLE
//   kDuplicate     the coordinator receives the call twice; the agent sees the first answer
//   kDropTask      PullTask only: an answer that hands out a task is lost (other answers pass)
//   kDropTaskOnce  PullTask only: the first answer that hands out a task is lost, later ones pass
// A plan chooses the fault for each call. Thread-safe (the agent calls from two threads).
// SecAggStep is forwarded without faults.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "fedattn/agent/coordinator_link.h"

namespace fedattn::testing {

enum class Fault { kNone, kDropRequest, kDropResponse, kDuplicate, kDropTask, kDropTaskOnce };

class FaultInjectingLink : public agent::CoordinatorLink {
 public:
  // `method` is the RPC name ("UploadUpdate"); `call` counts that method's calls from 1.
  struct Call {
    std::string method;
    int call = 0;
  };
  using Plan = std::function<Fault(const Call& call)>;

  // Borrows `inner`, which must outlive this link.
  FaultInjectingLink(agent::CoordinatorLink* inner, Plan plan) : inner_(inner), plan_(std::move(plan)) {}

  // What the coordinator answered to the second copy of each duplicated call.
  struct Duplicate {
    std::string method;
    absl::Status second;
  };
  std::vector<Duplicate> duplicates() const;
  int faults_injected() const;

  absl::StatusOr<v1::RegisterResponse> Register(const v1::RegisterRequest& request) override;
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request) override;
  absl::StatusOr<v1::PullTaskResponse> PullTask(const v1::PullTaskRequest& request) override;
  absl::Status Explain(const absl::Status& failure) override { return inner_->Explain(failure); }
  absl::StatusOr<std::vector<TensorBuffer>> DownloadModel(const v1::RoundRef& round) override;
  absl::StatusOr<v1::UploadUpdateResponse> UploadUpdate(const v1::RoundRef& round, const v1::TrainReport& report,
                                                        std::vector<rpc::TensorView> tensors) override;
  absl::Status ReportTask(const v1::ReportTaskRequest& request) override;
  absl::StatusOr<v1::SecAggStepResponse> SecAggStep(const v1::SecAggStepRequest& request) override {
    return inner_->SecAggStep(request);
  }
  absl::StatusOr<v1::RecordLedgerEntryResponse> RecordLedgerEntry(const v1::RecordLedgerEntryRequest& request) override;

 private:
  Fault Decide(const std::string& method);
  void Record(const std::string& method, const absl::Status& second);
  // Runs `send` once or twice and returns what the agent sees.
  template <typename Result>
  Result Deliver(const std::string& method, Fault fault, const std::function<Result()>& send);

  agent::CoordinatorLink* inner_;
  Plan plan_;
  mutable absl::Mutex mu_;
  std::map<std::string, int> calls_ ABSL_GUARDED_BY(mu_);
  std::vector<Duplicate> duplicates_ ABSL_GUARDED_BY(mu_);
  int faults_ ABSL_GUARDED_BY(mu_) = 0;
  int tasks_dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace fedattn::testing
