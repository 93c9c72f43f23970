#include "util/in_process_federation.h"

#include <grpcpp/client_context.h>

#include <cstring>
#include <fstream>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fedattn/audit/ledger_entry.h"
#include "fedattn/coordinator/federation_config.h"
#include "fedattn/coordinator/provision.h"
#include "fedattn/models/job_spec.h"
#include "gtest/gtest.h"

namespace fedattn::testing {
namespace {

template <typename T>
T OrThrow(absl::StatusOr<T> value, const std::string& what) {
  if (!value.ok()) throw std::runtime_error(absl::StrCat(what, ": ", value.status().ToString()));
  return *std::move(value);
}

std::chrono::system_clock::time_point In(absl::Duration duration) {
  return std::chrono::system_clock::now() + absl::ToChronoMilliseconds(duration);
}

}  // namespace

std::string TinyJob::Yaml(const std::filesystem::path& source_dir) const {
  return absl::StrCat(
      "job:\n  name: tiny\n  seed: 1\n",
      "  model:\n    kind: tabular_transformer\n    task: classification\n    d_model: 8\n    num_layers: 1\n"
      "    num_heads: 2\n    ffn_dim: 16\n    dropout: 0.0\n    attention_dropout: 0.0\n    norm: pre\n"
      "    trainable: full\n",
      "  data:\n    kind: tabular\n    schema: ", (source_dir / "configs/data/wdbc.schema.yaml").string(),
      "\n    validation_fraction: 0.0\n", "  rounds: ", rounds, "\n  sites:\n    fraction: 1.0\n    min_sites: ",
      min_sites, "\n", "  strategy:\n    name: fedavg\n",
      "  local:\n    epochs: 1\n    batch_size: 32\n    lr: 1.0e-3\n    threads: 1\n",
      secagg ? "  secagg:\n    enabled: true\n    max_dropout_fraction: 0.05\n    coordinate_clip: 4.0\n"
             : "  secagg:\n    enabled: false\n",
      "  deadlines:\n    train_s: ", train_s, "\n    stage_s: 10\n", "  evaluation:\n    every: 0\n",
      "  checkpoint:\n    every: 1\n");
}

InProcessFederation::InProcessFederation(std::vector<std::string> sites, std::filesystem::path source_dir)
    : source_dir_(std::move(source_dir)), sites_(std::move(sites)) {
  coordinator::FederationConfig config;
  config.name = "test-fed";
  config.coordinator.address = "127.0.0.1:0";
  config.sites = sites_;
  config.admins = {"operator"};
  const absl::Status provisioned = coordinator::Provision(config, dir_.path(), absl::Now());
  if (!provisioned.ok()) throw std::runtime_error(std::string(provisioned.message()));
  const std::filesystem::path kit = dir_.path() / "kits" / "coordinator";
  coordinator::CoordinatorOptions options;
  options.name = "coordinator";
  options.listen = "127.0.0.1:0";
  options.state_dir = state_dir();
  options.heartbeat_interval_ms = 1000;
  options.online_window_ms = 60000;
  options.max_pull_wait_ms = 1000;
  options.tls = {kit / "ca.crt", kit / "coordinator.crt", kit / "coordinator.key", {}};
  server_ = OrThrow(coordinator::CoordinatorServer::Start(options, RealClock::Get()), "starting the coordinator");
}

InProcessFederation::~InProcessFederation() {
  site_stubs_.clear();
  admin_.reset();
  if (server_) server_->Shutdown(absl::Seconds(1));
}

const rpc::TlsIdentity& InProcessFederation::Identity(const std::string& party) {
  auto it = identities_.find(party);
  if (it == identities_.end()) {
    const std::filesystem::path kit = dir_.path() / "kits" / party;
    it = identities_
             .emplace(party, OrThrow(rpc::LoadTlsIdentity({kit / "ca.crt", kit / (party + ".crt"),
                                                           kit / (party + ".key"), {}}),
                                     "loading " + party))
             .first;
  }
  return it->second;
}

v1::SiteService::Stub& InProcessFederation::Site(const std::string& site) {
  auto& stub = site_stubs_[site];
  if (!stub) stub = v1::SiteService::NewStub(rpc::MakeChannel(Identity(site), address(), "coordinator"));
  return *stub;
}

v1::AdminService::Stub& InProcessFederation::Admin() {
  if (!admin_) admin_ = v1::AdminService::NewStub(rpc::MakeChannel(Identity("operator"), address(), "coordinator"));
  return *admin_;
}

void InProcessFederation::RegisterAll() {
  for (const std::string& site : sites_) {
    grpc::ClientContext context;
    context.set_deadline(In(absl::Seconds(20)));
    v1::RegisterRequest request;
    request.set_site_name(site);
    request.set_agent_version("test");
    v1::RegisterResponse response;
    const grpc::Status status = Site(site).Register(&context, request, &response);
    ASSERT_TRUE(status.ok()) << site << ": " << status.error_message();
  }
}

std::string InProcessFederation::Resolve(const TinyJob& job) {
  const std::filesystem::path path = dir_.path() / "tiny-job.yaml";
  {
    std::ofstream out(path);
    out << job.Yaml(source_dir_);
  }
  return OrThrow(models::ResolveJobFile(path), "resolving the job");
}

std::string InProcessFederation::Submit(const TinyJob& job) {
  const std::string text = Resolve(job);
  const models::JobSpec spec = OrThrow(models::ParseJobSpec(text, "tiny"), "parsing the job");
  model_spec_ = OrThrow(models::BuildModelSpec(spec.model), "building the model spec");
  grpc::ClientContext context;
  context.set_deadline(In(absl::Seconds(20)));
  v1::SubmitJobRequest request;
  request.set_job_config(text);
  v1::SubmitJobResponse response;
  const grpc::Status status = Admin().SubmitJob(&context, request, &response);
  if (!status.ok()) throw std::runtime_error("SubmitJob: " + status.error_message());
  return response.job_id();
}

v1::JobInfo InProcessFederation::GetJob(const std::string& job_id) {
  grpc::ClientContext context;
  context.set_deadline(In(absl::Seconds(20)));
  v1::GetJobRequest request;
  request.set_job_id(job_id);
  v1::JobInfo info;
  const grpc::Status status = Admin().GetJob(&context, request, &info);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return info;
}

v1::JobInfo InProcessFederation::WaitForJob(const std::string& job_id, const std::string& state,
                                            absl::Duration timeout) {
  const absl::Time give_up = absl::Now() + timeout;
  v1::JobInfo info = GetJob(job_id);
  while (info.state() != state && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(50));
    info = GetJob(job_id);
  }
  return info;
}

absl::StatusOr<std::vector<TensorBuffer>> InProcessFederation::ExportModel(const std::string& job_id) {
  grpc::ClientContext context;
  context.set_deadline(In(absl::Seconds(20)));
  v1::ExportModelRequest request;
  request.set_job_id(job_id);
  auto reader = Admin().ExportModel(&context, request);
  rpc::CollectingSink sink;
  rpc::TensorStreamReader stream(&sink, rpc::StreamLimits{});
  v1::TensorChunk chunk;
  while (reader->Read(&chunk)) {
    const absl::Status added = stream.Add(chunk);
    if (!added.ok()) return added;
  }
  const grpc::Status status = reader->Finish();
  if (!status.ok()) return absl::InternalError(status.error_message());
  const absl::Status finished = stream.Finish();
  if (!finished.ok()) return finished;
  return sink.Take();
}

std::optional<v1::Task> PullTask(v1::SiteService::Stub& stub, const std::string& site, absl::Duration timeout) {
  const absl::Time give_up = absl::Now() + timeout;
  while (absl::Now() < give_up) {
    grpc::ClientContext context;
    context.set_deadline(In(absl::Seconds(5)));
    v1::PullTaskRequest request;
    request.set_site_name(site);
    request.set_wait_ms(1000);
    v1::PullTaskResponse response;
    const grpc::Status status = stub.PullTask(&context, request, &response);
    if (status.ok() && response.has_task()) return response.task();
    if (!status.ok()) absl::SleepFor(absl::Milliseconds(100));
  }
  return std::nullopt;
}

std::vector<TensorBuffer> ZeroModel(const models::ModelSpec& spec) {
  std::vector<TensorBuffer> tensors;
  for (const models::TensorSpec& tensor : spec.tensors) {
    TensorBuffer buffer{tensor.name, tensor.dtype, tensor.shape, {}};
    buffer.data.assign(static_cast<size_t>(tensor.numel()) * DTypeSize(tensor.dtype), 0);
    tensors.push_back(std::move(buffer));
  }
  return tensors;
}

TensorBuffer FlatUpdate(int64_t length, float value, const std::string& name) {
  TensorBuffer buffer{name, DType::kF32, {length}, {}};
  buffer.data.resize(static_cast<size_t>(length) * sizeof(float));
  for (int64_t i = 0; i < length; ++i) std::memcpy(buffer.data.data() + i * sizeof(float), &value, sizeof(float));
  return buffer;
}

grpc::Status Upload(v1::SiteService::Stub& stub, const v1::RoundRef& round, const v1::TrainReport& report,
                    const std::vector<TensorBuffer>& tensors, const std::function<void(v1::TensorChunk*)>& tamper) {
  grpc::ClientContext context;
  context.set_deadline(In(absl::Seconds(30)));
  v1::UploadUpdateResponse response;
  auto writer = stub.UploadUpdate(&context, &response);
  auto chunker = rpc::TensorChunker::Create(tensors, 1024);  // small chunks: several per tensor
  if (!chunker.ok()) return grpc::Status(grpc::StatusCode::INTERNAL, std::string(chunker.status().message()));
  v1::UploadUpdateRequest message;
  *message.mutable_round() = round;
  *message.mutable_report() = report;
  bool first = true;
  v1::TensorChunk chunk;
  while (chunker->Next(&chunk)) {
    if (tamper) tamper(&chunk);
    if (!first) message.Clear();
    first = false;
    *message.mutable_chunk() = chunk;
    if (!writer->Write(message)) break;  // the coordinator has answered: Finish says why
  }
  if (first) writer->Write(message);  // no tensor at all: the header alone
  writer->WritesDone();
  return writer->Finish();
}

v1::TrainReport Report(int64_t examples, double epsilon) {
  v1::TrainReport report;
  report.set_num_examples(examples);
  report.set_epsilon_spent(epsilon);
  report.set_epsilon_cumulative(epsilon);
  return report;
}

v1::RecordLedgerEntryRequest ReleaseEntry(const rpc::TlsIdentity& site, const std::string& job_id, int64_t round,
                                          int64_t seq) {
  audit::LedgerEntry entry;
  entry.id = seq;
  entry.site_name = site.info.name;
  entry.site_certificate_sha256 = site.info.fingerprint;
  entry.job_id = job_id;
  entry.round = round;
  entry.dataset_id = "test";
  entry.mechanism = audit::LedgerMechanism::None();
  entry.delta = 1e-5;
  entry.epsilon_release = audit::kUnbounded;
  entry.epsilon_cumulative = audit::kUnbounded;
  entry.created_unix_ms = absl::ToUnixMillis(absl::Now());
  const std::string canonical = OrThrow(audit::CanonicalLedgerEntry(entry), "encoding a ledger entry");
  crypto::PKeyPtr key = OrThrow(crypto::PrivateKeyFromPem(site.key_pem.value()), "reading the site key");
  v1::RecordLedgerEntryRequest request;
  request.set_site_name(site.info.name);
  request.set_entry_json(canonical);
  request.set_signature(OrThrow(audit::SignCanonical(key.get(), audit::kLedgerEntryDomain, canonical), "signing"));
  return request;
}

grpc::Status LogRelease(v1::SiteService::Stub& stub, const v1::RecordLedgerEntryRequest& entry) {
  grpc::ClientContext context;
  context.set_deadline(In(absl::Seconds(20)));
  v1::RecordLedgerEntryResponse response;
  return stub.RecordLedgerEntry(&context, entry, &response);
}

}  // namespace fedattn::testing
