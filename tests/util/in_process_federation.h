// A provisioned federation whose coordinator (CoordinatorServer: job manager, round engine,
// site and admin services) runs in the test process on 127.0.0.1 with real mutual TLS, and
// helpers that speak the site protocol with raw stubs: tests can send exactly the malformed,
// stale or duplicated message they mean to, and look at the coordinator's answer and state.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fedattn/common/clock.h"
#include "fedattn/coordinator/coordinator_server.h"
#include "fedattn/models/model_spec.h"
#include "fedattn/rpc/tensor_stream.h"
#include "fedattn/rpc/tls.h"
#include "fedattn/v1/fedattn.grpc.pb.h"
#include "util/temp_dir.h"

namespace fedattn::testing {

// A tiny tabular FT-Transformer job on the WDBC schema (a few thousand parameters), plain
// FedAvg unless `secagg`.
struct TinyJob {
  int rounds = 1;
  int min_sites = 2;
  bool secagg = false;
  double train_s = 30;  // deadlines.train_s
  std::string Yaml(const std::filesystem::path& source_dir) const;
};

class InProcessFederation {
 public:
  // Provisions `sites` and an admin "operator", starts the coordinator. `source_dir` is the
  // repository (for the data schema the tiny job names).
  InProcessFederation(std::vector<std::string> sites, std::filesystem::path source_dir);
  ~InProcessFederation();

  const std::filesystem::path& root() const { return dir_.path(); }
  std::filesystem::path state_dir() const { return dir_.path() / "state"; }
  std::string address() const { return "127.0.0.1:" + std::to_string(server_->port()); }
  const rpc::TlsIdentity& Identity(const std::string& party);
  v1::SiteService::Stub& Site(const std::string& site);
  v1::AdminService::Stub& Admin();

  // Registers every site (they count as online for a minute).
  void RegisterAll();
  // Submits `job` through the admin API; the job id. Also remembers the job's model spec.
  std::string Submit(const TinyJob& job);
  // The self-contained text Submit sends (`fedattn job submit` resolves a job file the same way).
  std::string Resolve(const TinyJob& job);
  const models::ModelSpec& model_spec() const { return model_spec_; }
  v1::JobInfo GetJob(const std::string& job_id);
  // Polls until the job is in `state` or `timeout` passes; the last JobInfo.
  v1::JobInfo WaitForJob(const std::string& job_id, const std::string& state, absl::Duration timeout);
  // The job's latest committed model (admin ExportModel).
  absl::StatusOr<std::vector<TensorBuffer>> ExportModel(const std::string& job_id);

 private:
  TempDir dir_;
  std::filesystem::path source_dir_;
  std::vector<std::string> sites_;
  std::unique_ptr<coordinator::CoordinatorServer> server_;
  std::map<std::string, rpc::TlsIdentity> identities_;
  std::map<std::string, std::unique_ptr<v1::SiteService::Stub>> site_stubs_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
  models::ModelSpec model_spec_;
};

// --- the site protocol, by hand.

// PullTask until a task comes or `timeout` passes.
std::optional<v1::Task> PullTask(v1::SiteService::Stub& stub, const std::string& site,
                                 absl::Duration timeout = absl::Seconds(20));
// Zeros for every tensor of `spec` (an initial model).
std::vector<TensorBuffer> ZeroModel(const models::ModelSpec& spec);
// A flat F32 update of `length` values, all `value`.
TensorBuffer FlatUpdate(int64_t length, float value, const std::string& name = "update");
// Streams `tensors` in an UploadUpdate call (`report` and `round` in the first message).
// `tamper`, when set, may change each chunk before it is sent.
grpc::Status Upload(v1::SiteService::Stub& stub, const v1::RoundRef& round, const v1::TrainReport& report,
                    const std::vector<TensorBuffer>& tensors,
                    const std::function<void(v1::TensorChunk*)>& tamper = {});
// A TrainReport with `examples` training examples.
v1::TrainReport Report(int64_t examples, double epsilon = 0);

// The signed ledger entry (docs/formats/ledger.md) that must reach the coordinator before a
// site's update for (job, round): release number `seq` of the site, without sample-level DP.
v1::RecordLedgerEntryRequest ReleaseEntry(const rpc::TlsIdentity& site, const std::string& job_id, int64_t round,
                                          int64_t seq);
grpc::Status LogRelease(v1::SiteService::Stub& stub, const v1::RecordLedgerEntryRequest& entry);

}  // namespace fedattn::testing
