// The ranks of one site under mpirun (docs/multi-gpu.md). Rank 0, the leader, is the agent that
// talks to the coordinator, holds the site ledger and runs SecAgg; ranks 1..N-1 are workers
// that wait for work from it, train their part of each batch, and wait again.
//
// Protocol, over parallel::Collective (every message a BroadcastString from rank 0):
//   "T" + work  a train task: every rank loads the site's data for the job, then TrainLocally
//               with the same options (the global model comes from rank 0 inside it);
//   "P"         a heartbeat, every `heartbeat` while idle, so a worker waiting for work notices a
//               dead leader within the collective's deadline (keep heartbeat well below it);
//   "S"         stop: the workers return.
// A worker's failure reaches the leader through TrainLocally's AgreeOnStatus ("rank N: ..."),
// which the leader reports to the coordinator as the task's failure. A broken collective ends
// the workers (they return its error) and, after the leader reported it, the leader.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "fedattn/agent/agent_options.h"
#include "fedattn/agent/local_training.h"
#include "fedattn/parallel/collective.h"

namespace fedattn::agent {

// Rank 0's side. Thread-safe: the agent's task thread and the heartbeat thread share it.
class SiteWorkers {
 public:
  // Borrows `collective` (size > 1, rank 0); starts the heartbeat thread.
  SiteWorkers(parallel::Collective* collective, absl::Duration heartbeat);
  ~SiteWorkers();  // Stop()
  SiteWorkers(const SiteWorkers&) = delete;
  SiteWorkers& operator=(const SiteWorkers&) = delete;

  // Sends a train task to the workers and silences the heartbeat until EndTrain(): between the
  // two, the caller runs TrainLocally with options.collective set (the workers do the same).
  // `train_examples`: the leader's count, which every worker checks against its own data.
  [[nodiscard]] absl::Status BeginTrain(const std::string& job_config, const LocalTrainingOptions& options,
                                        int64_t train_examples);
  void EndTrain();
  // Tells the workers to return (once; later calls do nothing). No collective call after it.
  void Stop();
  parallel::Collective* collective() { return collective_; }

 private:
  void Heartbeat();

  parallel::Collective* collective_;
  absl::Duration heartbeat_;
  std::mutex mu_;  // serialises the collective between the task and heartbeat threads
  std::condition_variable wake_;
  bool busy_ = false, stopped_ = false;
  std::thread thread_;
};

// A worker rank (1..N-1): serves rank 0's messages until "S" (returns OK) or until the
// collective fails (a dead or silent leader: returns its error). `options` is this rank's
// site.yaml (its data path). Train task errors are reported to rank 0, not returned.
[[nodiscard]] absl::Status RunSiteWorker(parallel::Collective& collective, const AgentOptions& options);

}  // namespace fedattn::agent
