// round_bench: round overhead and coordinator memory with the real coordinator (issue 6,
// "Performance"). Per configuration it provisions a federation of N sites in a temporary
// directory, starts `fedattn-coordinator` as a child process (its peak RSS is VmHWM in
// /proc/<pid>/status), and runs N fake sites as threads, each a GrpcCoordinatorLink with its own
// certificate. A fake site skips policy and training: for "init" it sends zero tensors of the
// job's model, for "train" it downloads the model (stream and hashes checked, bytes dropped) and
// uploads one fixed update (one pre-filled buffer shared by every site) with 100 examples. A
// plain FedAvg job (no DP, no SecAgg) goes in through the admin API.
//
//   round_s            mean wall time of committed rounds 2..R (the coordinator's RoundInfo)
//   transfer_s         bytes of a round (N downloads + N uploads of 4 x params) / loopback TCP
//                      bandwidth (one plain TCP stream of one model's bytes, measured in this run)
//   overhead_fraction  (round_s - transfer_s) / transfer_s          goal < 0.2 at 10 sites
//   stream_gb_per_s    one upload's bytes / its wall time (mean over the measured rounds; sites
//                      upload concurrently, so at N > 1 this is a per-stream share)
//   coordinator_peak_rss_mb  VmHWM of the coordinator    goal < 3 x model + a few MB per site
//
// Usage: round_bench [--sites 10,50] [--params-millions 10] [--rounds 3] [--keep]
// (default 10 and 50 sites: a few minutes on 2 cores; add 100 for the full issue-6 set)
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "admin_client.h"
#include "fedattn/agent/coordinator_link.h"
#include "fedattn/agent/ledger_sync.h"
#include "fedattn/agent/site_ledger.h"
#include "fedattn/common/files.h"
#include "fedattn/coordinator/federation_config.h"
#include "fedattn/coordinator/provision.h"
#include "fedattn/crypto/digest.h"
#include "fedattn/models/job_spec.h"
#include "fedattn/models/model_spec.h"
#include "fedattn/rpc/tensor_stream.h"
#include "fedattn/rpc/tls.h"

extern char** environ;

namespace fedattn::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "round_bench: " << what << "\n";
  std::exit(1);
}

template <typename T>
T OrDie(absl::StatusOr<T> value, const std::string& what) {
  if (!value.ok()) Die(absl::StrCat(what, ": ", value.status().ToString()));
  return *std::move(value);
}

void WriteText(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) Die("cannot write " + path.string());
}

// --- loopback TCP bandwidth: one plain stream of `bytes` through 127.0.0.1, 4 MiB writes.
double LoopbackBytesPerSecond(size_t bytes) {
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 || ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    Die("loopback socket");
  }
  const size_t kChunk = rpc::kMaxChunkBytes;
  std::vector<char> out(kChunk, 1);
  std::thread reader([&] {
    const int fd = ::accept(listener, nullptr, nullptr);
    std::vector<char> in(kChunk);
    size_t total = 0;
    while (total < bytes) {
      const ssize_t n = ::read(fd, in.data(), in.size());
      if (n <= 0) break;
      total += static_cast<size_t>(n);
    }
    ::close(fd);
  });
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) Die("loopback connect");
  const auto start = Clock::now();
  size_t sent = 0;
  while (sent < bytes) {
    const ssize_t n = ::write(fd, out.data(), std::min(kChunk, bytes - sent));
    if (n <= 0) Die("loopback write");
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  reader.join();
  const double seconds = Seconds(start);
  ::close(fd);
  ::close(listener);
  return static_cast<double>(bytes) / seconds;
}

// --- the job: a tabular FT-Transformer on the WDBC schema, widened to about the target size.
std::string JobYaml(int64_t ffn_dim, int rounds, int sites) {
  const std::filesystem::path schema = std::filesystem::path(FEDATTN_SOURCE_DIR) / "configs/data/wdbc.schema.yaml";
  return absl::StrCat(
      "job:\n  name: round-bench\n  seed: 1\n",
      "  model:\n    kind: tabular_transformer\n    task: classification\n    d_model: 512\n    num_layers: 2\n"
      "    num_heads: 8\n    ffn_dim: ",
      ffn_dim,
      "\n    dropout: 0.0\n    attention_dropout: 0.0\n    norm: pre\n    trainable: full\n",
      "  data:\n    kind: tabular\n    schema: ", schema.string(), "\n    validation_fraction: 0.0\n",
      "  rounds: ", rounds, "\n  sites:\n    fraction: 1.0\n    min_sites: ", sites, "\n",
      "  strategy:\n    name: fedavg\n",
      "  local:\n    epochs: 1\n    batch_size: 32\n    lr: 1.0e-3\n    threads: 1\n",
      "  secagg:\n    enabled: false\n",
      "  deadlines:\n    train_s: 1800\n",
      "  evaluation:\n    every: 0\n  checkpoint:\n    every: 1\n");
}

struct Job {
  std::string yaml;  // self-contained (ResolveJobFile's output)
  models::ModelSpec spec;
};

Job ResolveJob(const std::filesystem::path& dir, int64_t ffn_dim, int rounds, int sites) {
  const std::filesystem::path path = dir / "round-bench.yaml";
  WriteText(path, JobYaml(ffn_dim, rounds, sites));
  Job job;
  job.yaml = OrDie(models::ResolveJobFile(path), "resolving the job");
  const models::JobSpec spec = OrDie(models::ParseJobSpec(job.yaml, "round-bench"), "parsing the job");
  job.spec = OrDie(models::BuildModelSpec(spec.model), "building the model spec");
  return job;
}

// ffn_dim (a multiple of 64) that brings the model closest to `target` parameters.
int64_t FfnDimFor(const std::filesystem::path& dir, double target) {
  const double a = static_cast<double>(ResolveJob(dir, 1024, 3, 2).spec.NumParameters());
  const double b = static_cast<double>(ResolveJob(dir, 2048, 3, 2).spec.NumParameters());
  const double ffn = 1024 + (target - a) * 1024 / (b - a);
  return std::max<int64_t>(64, static_cast<int64_t>(std::llround(ffn / 64)) * 64);
}

// --- the coordinator as a child process.
class Coordinator {
 public:
  Coordinator(const std::filesystem::path& kit, const std::filesystem::path& log) {
    WriteText(kit / "coordinator-bench.yaml",
              "coordinator:\n  name: coordinator\n  listen: 127.0.0.1:0\n  state_dir: state\n"
              "  heartbeat_interval_seconds: 1\n  online_window_seconds: 30\n"
              "tls:\n  ca: ca.crt\n  cert: coordinator.crt\n  key: coordinator.key\n");
    const std::filesystem::path port_file = kit / "port";
    std::vector<std::string> args = {FEDATTN_COORDINATOR_BIN, "--config", (kit / "coordinator-bench.yaml").string(),
                                     "--port-file", port_file.string(), "--log-level", "info"};
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    if (posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0) Die("cannot start the coordinator");
    posix_spawn_file_actions_destroy(&actions);
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      std::ifstream in(port_file);
      if (in >> port_ && port_ > 0) return;
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        Die("the coordinator exited at start; see " + log.string());
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    Die("the coordinator did not start; see " + log.string());
  }
  ~Coordinator() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100 && ::waitpid(pid_, nullptr, WNOHANG) != pid_; ++i) absl::SleepFor(absl::Milliseconds(50));
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

// kB fields of /proc/<pid>/status.
struct Memory {
  double hwm_mb = 0, rss_mb = 0, anon_mb = 0, file_mb = 0;
};
Memory ReadMemory(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  Memory memory;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string key;
    double kb = 0;
    fields >> key >> kb;
    if (key == "VmHWM:") memory.hwm_mb = kb / 1024;
    if (key == "VmRSS:") memory.rss_mb = kb / 1024;
    if (key == "RssAnon:") memory.anon_mb = kb / 1024;
    if (key == "RssFile:") memory.file_mb = kb / 1024;
  }
  return memory;
}

// Checks a download stream (order, sizes, SHA-256 per tensor) and drops the bytes.
class DiscardingSink : public rpc::TensorSink {
 public:
  absl::Status BeginTensor(const std::string&, DType, const std::vector<int64_t>&, uint64_t) override {
    return absl::OkStatus();
  }
  absl::Status Data(uint64_t, std::span<const uint8_t>) override { return absl::OkStatus(); }
  absl::Status EndTensor() override { return absl::OkStatus(); }
};

// What every fake site shares: the job's tensors as zero views, the fixed update.
struct Shared {
  std::vector<float> zeros;                // every tensor of the model, back to back
  std::vector<rpc::TensorView> init_views;  // views into `zeros`
  std::vector<float> update;               // num_trainable values
  crypto::Sha256Digest update_sha256{};
};

struct Timing {
  int64_t round = 0;
  double download_s = 0, upload_s = 0;
  uint64_t upload_bytes = 0;
};

class FakeSite {
 public:
  FakeSite(std::string name, rpc::TlsIdentity identity, const std::string& address, const Shared* shared,
           const std::filesystem::path& state_dir)
      : name_(std::move(name)), identity_(std::move(identity)), shared_(shared),
        link_(&identity_, rpc::CoordinatorEndpoint{address, "coordinator"}),
        stub_(v1::SiteService::NewStub(rpc::MakeChannel(identity_, address, "coordinator"))) {
    // A real, signed ledger: the coordinator takes an update only after its entry is logged.
    if (absl::Status made = EnsureDirectory(state_dir, 0700); !made.ok()) Die(made.ToString());
    ledger_ = OrDie(agent::SiteLedger::Open(state_dir / "ledger.db", RealClock::Get(),
                                            OrDie(agent::SignerFor(name_, identity_.info.fingerprint,
                                                                   identity_.key_pem.value()),
                                                  "loading the key of " + name_)),
                    "opening the ledger of " + name_);
  }

  void Register() {
    v1::RegisterRequest request;
    request.set_site_name(name_);
    request.set_agent_version("round-bench");
    request.set_world_size(1);
    OrDie(link_.Register(request), "registering " + name_);
    Heartbeat();
  }
  void Heartbeat() {
    v1::HeartbeatRequest request;
    request.set_site_name(name_);
    request.set_state("idle");
    (void)link_.Heartbeat(request);
  }
  void Start() { thread_ = std::thread([this] { Loop(); }); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<Timing> timings() {
    std::lock_guard lock(mu_);
    return timings_;
  }
  const std::string& error() const { return error_; }

 private:
  void Loop() {
    while (!stop_) {
      v1::PullTaskRequest request;
      request.set_site_name(name_);
      request.set_wait_ms(1000);
      absl::StatusOr<v1::PullTaskResponse> pulled = link_.PullTask(request);
      if (!pulled.ok()) {
        absl::SleepFor(absl::Milliseconds(200));
        continue;
      }
      if (!pulled->has_task()) continue;
      const absl::Status done = Handle(pulled->task());
      if (!done.ok()) {
        error_ = absl::StrCat(name_, ": ", done.ToString());
        std::cerr << "round_bench: " << error_ << "\n";
      }
    }
  }

  absl::Status Handle(const v1::Task& task) {
    if (task.kind() == "init") return link_.UploadUpdate(task.round(), v1::TrainReport(), shared_->init_views).status();
    Timing timing;
    timing.round = static_cast<int64_t>(task.round().round());
    auto start = Clock::now();
    {
      DiscardingSink sink;
      rpc::TensorStreamReader reader(&sink, rpc::StreamLimits{});
      v1::DownloadModelRequest request;
      *request.mutable_round() = task.round();
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(30));
      std::unique_ptr<grpc::ClientReader<v1::TensorChunk>> stream = stub_->DownloadModel(&context, request);
      v1::TensorChunk chunk;
      absl::Status status;
      while (status.ok() && stream->Read(&chunk)) status = reader.Add(chunk);
      if (!status.ok()) context.TryCancel();
      const grpc::Status finished = stream->Finish();
      if (!status.ok()) return status;
      if (!finished.ok()) return absl::UnavailableError(absl::StrCat("download: ", finished.error_message()));
      if (absl::Status complete = reader.Finish(); !complete.ok()) return complete;
    }
    timing.download_s = Seconds(start);
    v1::TrainReport report;
    report.set_num_examples(100);
    report.set_seconds(0);
    const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(shared_->update.data()),
                                         shared_->update.size() * sizeof(float));
    start = Clock::now();
    // What a site does before its upload: its ledger entry, durable, logged by the coordinator.
    agent::LedgerEntry entry;
    entry.job_id = task.round().job_id();
    entry.round = timing.round;
    entry.dataset_id = "sha256:round-bench";
    entry.mechanism = agent::LedgerMechanism::None();
    entry.delta = 1e-5;
    if (absl::Status recorded = ledger_->RecordRelease(entry).status(); !recorded.ok()) return recorded;
    if (absl::Status synced = agent::SyncLedger(*ledger_, link_, name_, identity_.ca_pem); !synced.ok()) return synced;
    auto sent = link_.UploadUpdate(
        task.round(), report,
        {rpc::TensorView{"update", DType::kF32, {static_cast<int64_t>(shared_->update.size())}, bytes,
                         shared_->update_sha256}});
    timing.upload_s = Seconds(start);
    if (!sent.ok()) return sent.status();
    timing.upload_bytes = sent->bytes_received();
    std::lock_guard lock(mu_);
    timings_.push_back(timing);
    return absl::OkStatus();
  }

  std::string name_;
  rpc::TlsIdentity identity_;
  const Shared* shared_;
  agent::GrpcCoordinatorLink link_;
  std::unique_ptr<v1::SiteService::Stub> stub_;  // downloads without keeping the model
  std::unique_ptr<agent::SiteLedger> ledger_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<Timing> timings_;
  std::string error_;
};

struct Result {
  int sites = 0;
  int64_t params = 0;
  double round_s = 0, transfer_s = 0, overhead_fraction = 0, stream_gb_per_s = 0;
  double peak_rss_mb = 0, peak_anon_mb = 0, peak_file_mb = 0, model_mb = 0;
  double download_s = 0, upload_s = 0, submit_to_done_s = 0;
  std::string state;
};

Result RunConfiguration(int sites, int64_t ffn_dim, int rounds, double loopback_bps, bool keep) {
  char pattern[] = "/tmp/round-bench-XXXXXX";
  if (::mkdtemp(pattern) == nullptr) Die("mkdtemp");
  const std::filesystem::path root(pattern);
  const Job job = ResolveJob(root, ffn_dim, rounds, sites);

  coordinator::FederationConfig config;
  config.name = "round-bench";
  config.coordinator.address = "127.0.0.1:0";
  for (int i = 0; i < sites; ++i) config.sites.push_back(absl::StrCat("site-", i));
  config.admins = {"operator"};
  auto provision_start = Clock::now();
  if (absl::Status status = coordinator::Provision(config, root, absl::Now()); !status.ok()) {
    Die(absl::StrCat("provision: ", status.ToString()));
  }
  std::cerr << "  provisioned " << sites << " sites in " << Seconds(provision_start) << " s\n";

  Shared shared;
  shared.zeros.assign(static_cast<size_t>(job.spec.NumParameters()), 0.0f);
  int64_t offset = 0;
  for (const models::TensorSpec& tensor : job.spec.tensors) {
    const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(shared.zeros.data() + offset),
                                         static_cast<size_t>(tensor.numel()) * sizeof(float));
    shared.init_views.push_back(rpc::TensorView{tensor.name, DType::kF32, tensor.shape, bytes, std::nullopt});
    offset += tensor.numel();
  }
  shared.update.assign(static_cast<size_t>(job.spec.NumTrainable()), 1.0e-4f);
  {
    crypto::Sha256Hasher hasher;
    hasher.Update(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(shared.update.data()),
                                           shared.update.size() * sizeof(float)));
    shared.update_sha256 = hasher.Finish();
  }

  const std::filesystem::path kit = root / "kits" / "coordinator";
  Coordinator coordinator(kit, root / "coordinator.log");

  // Peak memory as the process sees it, split into anonymous and file-backed (spool mappings).
  std::atomic<bool> sampling{true};
  Memory peak;
  std::thread sampler([&] {
    while (sampling) {
      const Memory now = ReadMemory(coordinator.pid());
      peak.anon_mb = std::max(peak.anon_mb, now.anon_mb);
      peak.file_mb = std::max(peak.file_mb, now.file_mb);
      peak.hwm_mb = std::max(peak.hwm_mb, now.hwm_mb);
      absl::SleepFor(absl::Milliseconds(20));
    }
  });

  std::vector<std::unique_ptr<FakeSite>> fakes;
  for (const std::string& site : config.sites) {
    const std::filesystem::path site_kit = root / "kits" / site;
    rpc::TlsIdentity identity = OrDie(
        rpc::LoadTlsIdentity({site_kit / "ca.crt", site_kit / (site + ".crt"), site_kit / (site + ".key"), {}}),
        "loading " + site);
    fakes.push_back(
        std::make_unique<FakeSite>(site, std::move(identity), coordinator.address(), &shared, site_kit / "state"));
    fakes.back()->Register();
  }
  std::atomic<bool> beating{true};
  std::thread heart([&] {
    while (beating) {
      for (auto& fake : fakes) fake->Heartbeat();
      absl::SleepFor(absl::Milliseconds(700));
    }
  });
  for (auto& fake : fakes) fake->Start();

  cli::AdminOptions admin_options =
      OrDie(cli::LoadAdminOptions(root / "kits" / "operator" / "admin.yaml"), "loading admin.yaml");
  admin_options.coordinator.address = coordinator.address();
  std::unique_ptr<cli::AdminClient> admin = OrDie(cli::AdminClient::Create(admin_options), "admin client");
  const auto submitted = Clock::now();
  const std::string job_id = OrDie(admin->SubmitJob(job.yaml), "submitting the job");
  v1::JobInfo info;
  const absl::Time deadline = absl::Now() + absl::Minutes(30);
  while (absl::Now() < deadline) {
    absl::StatusOr<v1::JobInfo> got = admin->GetJob(job_id);
    if (!got.ok()) {  // a loaded coordinator may time out a call; a stopped one ends the run
      if (::waitpid(coordinator.pid(), nullptr, WNOHANG) == coordinator.pid() || ::kill(coordinator.pid(), 0) != 0 ||
          ReadMemory(coordinator.pid()).rss_mb == 0) {
        info.set_state("coordinator stopped");
        info.set_error(got.status().ToString());
        break;
      }
      absl::SleepFor(absl::Milliseconds(500));
      continue;
    }
    info = *std::move(got);
    if (info.state() != "queued" && info.state() != "running") break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  Result result;
  result.submit_to_done_s = Seconds(submitted);
  result.state = info.state();
  result.peak_rss_mb = ReadMemory(coordinator.pid()).hwm_mb;

  beating = false;
  heart.join();
  for (auto& fake : fakes) fake->Stop();
  sampling = false;
  sampler.join();

  result.sites = sites;
  result.params = job.spec.NumParameters();
  result.model_mb = static_cast<double>(result.params) * 4 / (1 << 20);
  result.peak_anon_mb = peak.anon_mb;
  result.peak_file_mb = peak.file_mb;
  if (info.state() != "completed") {
    std::cerr << "round_bench: job " << job_id << " ended " << info.state() << ": " << info.error()
              << " (logs under " << root << ")\n";
    keep = true;
  }
  // Rounds 2..R when there are at least two trained rounds, else every trained round.
  const int64_t first = rounds >= 2 ? 2 : 1;
  double total = 0;
  int counted = 0;
  for (const v1::RoundInfo& round : info.round_history()) {
    if (round.state() != "committed" || static_cast<int64_t>(round.round()) < first) continue;
    total += static_cast<double>(round.finished_unix_ms() - round.started_unix_ms()) / 1000;
    ++counted;
  }
  result.round_s = counted > 0 ? total / counted : 0;
  const double round_bytes = 2.0 * sites * 4.0 * static_cast<double>(result.params);
  result.transfer_s = round_bytes / loopback_bps;
  result.overhead_fraction = (result.round_s - result.transfer_s) / result.transfer_s;
  double download = 0, upload = 0, rate = 0;
  int uploads = 0;
  for (auto& fake : fakes) {
    for (const Timing& timing : fake->timings()) {
      if (timing.round < first) continue;
      download += timing.download_s;
      upload += timing.upload_s;
      rate += static_cast<double>(timing.upload_bytes) / timing.upload_s / 1e9;
      ++uploads;
    }
  }
  if (uploads > 0) {
    result.download_s = download / uploads;
    result.upload_s = upload / uploads;
    result.stream_gb_per_s = rate / uploads;
  }
  fakes.clear();
  if (!keep) std::filesystem::remove_all(root);
  return result;
}

std::vector<int> ParseSites(const std::string& text) {
  std::vector<int> sites;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    const int n = std::atoi(std::string(part).c_str());
    if (n < 1) Die("--sites takes a comma-separated list of positive counts");
    sites.push_back(n);
  }
  return sites;
}

int Main(int argc, char** argv) {
  std::vector<int> site_counts = {10, 50};  // --sites 10,50,100 for the whole issue-6 set
  double params_millions = 10;
  int rounds = 3;
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Die(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--sites") {
      site_counts = ParseSites(value());
    } else if (arg == "--params-millions") {
      params_millions = std::atof(value().c_str());
    } else if (arg == "--rounds") {
      rounds = std::max(1, std::atoi(value().c_str()));
    } else if (arg == "--keep") {
      keep = true;
    } else {
      Die("usage: round_bench [--sites 10,50,100] [--params-millions 10] [--rounds 3] [--keep]");
    }
  }
  ::signal(SIGPIPE, SIG_IGN);
  char pattern[] = "/tmp/round-bench-spec-XXXXXX";
  if (::mkdtemp(pattern) == nullptr) Die("mkdtemp");
  const int64_t ffn_dim = FfnDimFor(pattern, params_millions * 1e6);
  const Job job = ResolveJob(pattern, ffn_dim, rounds, 2);
  std::filesystem::remove_all(pattern);
  const int64_t params = job.spec.NumParameters();
  const size_t model_bytes = static_cast<size_t>(params) * sizeof(float);
  std::cout << "model: tabular FT-Transformer, d_model 512, 2 layers, ffn_dim " << ffn_dim << ": " << params
            << " parameters (" << job.spec.NumTrainable() << " trainable), " << model_bytes / 1e6 << " MB\n";
  // Best of three: the machine is shared, and the best run is the closest to what loopback can do.
  double loopback = 0;
  for (int i = 0; i < 3; ++i) loopback = std::max(loopback, LoopbackBytesPerSecond(model_bytes));
  std::cout << "loopback TCP, one stream of " << model_bytes / 1e6 << " MB: " << loopback / 1e9 << " GB/s\n";

  std::vector<Result> results;
  for (int sites : site_counts) {
    std::cerr << "running " << sites << " sites, " << rounds << " rounds...\n";
    results.push_back(RunConfiguration(sites, ffn_dim, rounds, loopback, keep));
  }
  std::printf("\n%6s %10s %9s %11s %9s %10s %10s %10s %11s %10s %10s %8s\n", "sites", "params", "round_s",
              "transfer_s", "overhead", "down_s", "up_s", "stream_GB/s", "peak_rss_MB", "anon_MB", "file_MB",
              "rss/model");
  for (const Result& r : results) {
    std::printf("%6d %10lld %9.3f %11.3f %8.1f%% %10.3f %10.3f %10.2f %11.1f %10.1f %10.1f %8.2f\n", r.sites,
                static_cast<long long>(r.params), r.round_s, r.transfer_s, 100 * r.overhead_fraction, r.download_s,
                r.upload_s, r.stream_gb_per_s, r.peak_rss_mb, r.peak_anon_mb, r.peak_file_mb,
                r.peak_rss_mb / r.model_mb);
  }
  std::cout << "\n";
  for (const Result& r : results) {
    nlohmann::json line = {{"bench", "round"},
                           {"sites", r.sites},
                           {"params", r.params},
                           {"rounds", rounds},
                           {"state", r.state},
                           {"round_s", r.round_s},
                           {"transfer_s", r.transfer_s},
                           {"overhead_fraction", r.overhead_fraction},
                           {"loopback_gb_per_s", loopback / 1e9},
                           {"stream_gb_per_s", r.stream_gb_per_s},
                           {"download_s", r.download_s},
                           {"upload_s", r.upload_s},
                           {"coordinator_peak_rss_mb", r.peak_rss_mb},
                           {"coordinator_peak_anon_mb", r.peak_anon_mb},
                           {"coordinator_peak_file_mb", r.peak_file_mb},
                           {"model_mb", r.model_mb}};
    std::cout << line.dump() << "\n";
  }
  bool ok = true;
  for (const Result& r : results) ok = ok && r.state == "completed";
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace fedattn::bench

int main(int argc, char** argv) { return fedattn::bench::Main(argc, argv); }
