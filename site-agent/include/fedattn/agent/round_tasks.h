// The site's side of a job's rounds: the "init" task (send the job's initial model) and the
// "train" task (check the job against the site's policy and privacy cap, train on local data
// with DP-SGD, record the release in the site ledger, then send the update — masked through
// SecAgg+ when the round asks for it). A refused task is reported to the coordinator with its
// reason; nothing leaves the site before its ledger row is durable.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "fedattn/agent/agent_options.h"
#include "fedattn/agent/coordinator_link.h"
#include "fedattn/agent/site_ledger.h"
#include "fedattn/models/train_progress.h"
#include "fedattn/rpc/tls.h"
#include "fedattn/v1/fedattn.pb.h"

namespace fedattn::agent {

class SiteWorkers;

class RoundTasks {
 public:
  // Borrows everything; all must outlive this object. The ledger lives in options.state_dir.
  RoundTasks(const AgentOptions* options, const rpc::TlsIdentity* identity, CoordinatorLink* link,
             SiteLedger* ledger)
      : options_(options), identity_(identity), link_(link), ledger_(ledger) {}

  // Under mpirun (rank 0): train tasks also run on the site's other ranks (not owned).
  void set_workers(SiteWorkers* workers) { workers_ = workers; }

  [[nodiscard]] absl::Status HandleInit(const v1::Task& task);
  [[nodiscard]] absl::Status HandleTrain(const v1::Task& task);
  // Receives the progress of every train task's local training (a progress bar; empty: none).
  void set_training_progress(models::TrainProgressCallback progress) { training_progress_ = std::move(progress); }

 private:
  absl::Status Refuse(const v1::Task& task, const std::string& reason);
  // Sends unacknowledged ledger entries to the coordinator (ledger_sync.h).
  absl::Status Sync();
  std::filesystem::path ReleasePath(const v1::RoundRef& round) const;

  const AgentOptions* options_;
  const rpc::TlsIdentity* identity_;
  CoordinatorLink* link_;
  SiteLedger* ledger_;
  models::TrainProgressCallback training_progress_;
  SiteWorkers* workers_ = nullptr;
};

}  // namespace fedattn::agent
