#include "fedattn/agent/round_tasks.h"

#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "fedattn/agent/ledger_sync.h"
#include "fedattn/agent/local_training.h"
#include "fedattn/agent/site_workers.h"
#include "fedattn/common/failpoint.h"
#include "fedattn/common/files.h"
#include "fedattn/common/logging.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/crypto/certificate.h"
#include "fedattn/crypto/keys.h"
#include "fedattn/dp/clipping.h"
#include "fedattn/dp/gaussian_noise.h"
#include "fedattn/dp/secure_rng.h"
#include "fedattn/models/checkpoint.h"
#include "fedattn/rpc/secagg_wire.h"
#include "fedattn/secagg/client.h"
#include "fedattn/secagg/encoding.h"
#include "fedattn/secagg/identity.h"
#include "fedattn/tensor/model_digest.h"
#include "fedattn/tensor/safetensors.h"

namespace fedattn::agent {
namespace {

constexpr uint32_t kPollMs = 10000;

std::string Where(const v1::Task& task) {
  return absl::StrCat("job '", task.round().job_id(), "' round ", task.round().round());
}

rpc::TensorView FloatView(const std::string& name, const std::vector<float>& values) {
  return rpc::TensorView{name, DType::kF32, {static_cast<int64_t>(values.size())},
                         std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(values.data()),
                                                  values.size() * sizeof(float)),
                         std::nullopt};
}

// What was released for a round, kept so that a round the coordinator runs again (after a
// restart) gets the same update, not a second release.
struct Release {
  std::vector<float> update;
  v1::TrainReport report;
};

absl::Status SaveRelease(const std::filesystem::path& path, const Release& release) {
  RETURN_IF_ERROR(EnsureDirectory(path.parent_path(), 0700));
  TensorBuffer tensor{"update", DType::kF32, {static_cast<int64_t>(release.update.size())}, {}};
  tensor.data.resize(release.update.size() * sizeof(float));
  std::memcpy(tensor.data.data(), release.update.data(), tensor.data.size());
  return SaveSafetensors(path, {tensor}, {{"fedattn.report", absl::Base64Escape(release.report.SerializeAsString())}});
}

absl::StatusOr<Release> LoadRelease(const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(SafetensorsFile file, LoadSafetensors(path));
  Release release;
  const auto report = file.metadata.find("fedattn.report");
  std::string bytes;
  if (file.tensors.size() != 1 || report == file.metadata.end() || !absl::Base64Unescape(report->second, &bytes) ||
      !release.report.ParseFromString(bytes)) {
    return absl::DataLossError(absl::StrCat(path.string(), " is not a release file"));
  }
  release.update.resize(file.tensors[0].data.size() / sizeof(float));
  std::memcpy(release.update.data(), file.tensors[0].data.data(), release.update.size() * sizeof(float));
  return release;
}

std::string HexOf(const std::string& bytes) {
  return crypto::ToHex(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

// Drives this site's SecAgg+ client through the round's four stages over SecAggStep.
class SecAggSession {
 public:
  SecAggSession(const v1::Task& task, const rpc::TlsIdentity& identity, CoordinatorLink* link,
                const std::string& site)
      : task_(task), identity_(identity), link_(link), site_(site) {}

  absl::Status Run(const Release& release) {
    const v1::SecAggRound& round = task_.secagg();
    // Every peer's certificate must come from our CA and name the peer: the coordinator cannot
    // slip in keys of its own (Bonawitz et al. 2017, §6: signed keys against an active server).
    ASSIGN_OR_RETURN(crypto::X509Ptr ca, crypto::CertificateFromPem(identity_.ca_pem));
    auto peers = std::make_shared<secagg::PeerDirectory>();
    secagg::SecAggConfig config;
    config.job_id = task_.round().job_id();
    config.round = task_.round().round();
    for (const v1::SecAggPeer& peer : round.peers()) {
      ASSIGN_OR_RETURN(crypto::X509Ptr cert, crypto::CertificateFromPem(peer.certificate_pem()));
      RETURN_IF_ERROR(crypto::VerifyCertificate(cert.get(), ca.get(), absl::Now()));
      ASSIGN_OR_RETURN(crypto::CertificateInfo info, crypto::InspectCertificate(cert.get()));
      if (info.name != peer.site_name() || info.role != crypto::PartyRole::kSite) {
        return absl::PermissionDeniedError(absl::StrCat("SecAgg peer ", peer.site_id(), " claims to be '",
                                                        peer.site_name(), "' with the certificate of '", info.name,
                                                        "'"));
      }
      RETURN_IF_ERROR(peers->Add(peer.site_id(), X509_get0_pubkey(cert.get())));
      config.sites.push_back(peer.site_id());
    }
    config.vector_length = round.vector_length();
    config.degree = round.degree();
    config.threshold = round.threshold();
    config.max_dropout_fraction = round.max_dropout_fraction();
    if (round.graph_seed().size() != config.graph_seed.size()) return absl::InvalidArgumentError("bad graph seed");
    std::memcpy(config.graph_seed.data(), round.graph_seed().data(), config.graph_seed.size());
    if (release.update.size() != config.vector_length) {
      return absl::InvalidArgumentError(absl::StrCat("the round aggregates ", config.vector_length,
                                                     " values, this site's update has ", release.update.size()));
    }
    ASSIGN_OR_RETURN(crypto::PKeyPtr key, crypto::PrivateKeyFromPem(identity_.key_pem.value()));
    ASSIGN_OR_RETURN(std::unique_ptr<secagg::SecAggClient> client,
                     secagg::SecAggClient::Create(config, round.site_id(), key.get(), peers,
                                                  std::make_unique<crypto::SystemRandom>()));
    const std::string& job = config.job_id;
    const uint64_t number = config.round;

    ASSIGN_OR_RETURN(secagg::KeyAdvertisement advertisement, client->AdvertiseKeys());
    v1::SecAggStepRequest request = Request(1);
    *request.mutable_advertisement() = rpc::ToProto(advertisement);
    *request.mutable_report() = release.report;
    ASSIGN_OR_RETURN(v1::SecAggStepResponse response, Exchange(request));
    ASSIGN_OR_RETURN(secagg::NeighbourKeys keys, rpc::FromProto(response.neighbour_keys(), job, number));
    Failpoint("agent.after_advertise");
    const double weight_scale = response.neighbour_keys().weight_scale();
    const float clip = response.neighbour_keys().coordinate_clip();
    const uint32_t max_sites = response.neighbour_keys().max_sites();

    ASSIGN_OR_RETURN(secagg::ShareKeysMessage share, client->ShareKeys(keys));
    request = Request(2);
    *request.mutable_share_keys() = rpc::ToProto(share);
    ASSIGN_OR_RETURN(response, Exchange(request));
    ASSIGN_OR_RETURN(secagg::SharesForSite shares, rpc::FromProto(response.shares(), job, number));
    Failpoint("agent.after_share_keys");

    // Encode (n_k / W) · update: the sum decodes to Σ n_k · update_k / W (docs/secagg.md).
    if (!(weight_scale >= 1) || release.report.num_examples() > weight_scale) {
      return absl::InvalidArgumentError(absl::StrCat("the coordinator's weight scale ", weight_scale,
                                                     " is below this site's ", release.report.num_examples(),
                                                     " examples"));
    }
    const float weight = static_cast<float>(static_cast<double>(release.report.num_examples()) / weight_scale);
    std::vector<float> weighted(release.update.size());
    for (size_t i = 0; i < weighted.size(); ++i) weighted[i] = release.update[i] * weight;
    ASSIGN_OR_RETURN(secagg::Encoder encoder, secagg::Encoder::Create(secagg::EncodingOptions{clip, max_sites, 0}));
    std::vector<uint32_t> encoded(weighted.size());
    crypto::SystemRandom rounding;
    RETURN_IF_ERROR(encoder.Encode(weighted, encoded, rounding));
    weighted = {};
    ASSIGN_OR_RETURN(secagg::MaskedInput masked, client->MaskInput(shares, std::move(encoded)));
    rpc::TensorView view{"masked", DType::kU32, {static_cast<int64_t>(masked.masked.size())},
                         std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(masked.masked.data()),
                                                  masked.masked.size() * sizeof(uint32_t)),
                         std::nullopt};
    RETURN_IF_ERROR(link_->UploadUpdate(task_.round(), release.report, {view}).status());
    Failpoint("agent.after_masked_upload");

    request = Request(3);
    ASSIGN_OR_RETURN(response, Exchange(request));
    ASSIGN_OR_RETURN(secagg::UnmaskRequest unmask, rpc::FromProto(response.unmask_request(), job, number));
    ASSIGN_OR_RETURN(secagg::UnmaskResponse reveal, client->Unmask(unmask));
    request = Request(4);
    *request.mutable_unmask() = rpc::ToProto(reveal);
    ASSIGN_OR_RETURN(response, Exchange(request, /*last=*/true));
    Failpoint("agent.after_unmask");
    return absl::OkStatus();
  }

 private:
  v1::SecAggStepRequest Request(uint32_t await_stage) const {
    v1::SecAggStepRequest request;
    *request.mutable_round() = task_.round();
    request.set_site_name(site_);
    request.set_wait_ms(kPollMs);
    request.set_await_stage(await_stage);
    return request;
  }

  // Sends `request`, then polls (without the message) until the coordinator's answer is ready.
  // After this site's `last` message was taken, a round that has moved on (the coordinator
  // committed it between two polls) needs nothing more from the site: that is not an error.
  absl::StatusOr<v1::SecAggStepResponse> Exchange(v1::SecAggStepRequest request, bool last = false) {
    const absl::Time give_up = absl::FromUnixMillis(task_.deadline_unix_ms()) +
                               absl::Milliseconds(5 * static_cast<int64_t>(task_.secagg().stage_timeout_ms()));
    bool delivered = false;
    while (true) {
      absl::StatusOr<v1::SecAggStepResponse> answer = link_->SecAggStep(request);
      if (last && delivered && absl::IsFailedPrecondition(answer.status())) {
        spdlog::info("{}: the round ended before this site heard its outcome ({})",
                     Where(task_), answer.status().message());
        v1::SecAggStepResponse done;
        done.set_ready(true);
        return done;
      }
      ASSIGN_OR_RETURN(v1::SecAggStepResponse response, std::move(answer));
      delivered = true;
      if (response.ready()) return response;
      if (absl::Now() > give_up) {
        return absl::DeadlineExceededError(absl::StrCat("SecAgg stage ", request.await_stage(), " never completed"));
      }
      request.clear_message();
      request.clear_report();
    }
  }

  const v1::Task& task_;
  const rpc::TlsIdentity& identity_;
  CoordinatorLink* link_;
  std::string site_;
};

}  // namespace

std::filesystem::path RoundTasks::ReleasePath(const v1::RoundRef& round) const {
  return options_->state_dir / "releases" / round.job_id() / absl::StrCat("round-", round.round(), ".safetensors");
}

absl::Status RoundTasks::Sync() {
  return SyncLedger(*ledger_, *link_, options_->site_name, identity_->ca_pem);
}

absl::Status RoundTasks::Refuse(const v1::Task& task, const std::string& reason) {
  spdlog::warn("{}: refused: {}", Where(task), reason);
  v1::ReportTaskRequest report;
  *report.mutable_round() = task.round();
  report.set_site_name(options_->site_name);
  report.set_outcome(v1::ReportTaskRequest::REFUSED);
  report.set_reason(reason);
  return link_->ReportTask(report);
}

absl::Status RoundTasks::HandleInit(const v1::Task& task) {
  ASSIGN_OR_RETURN(models::JobSpec job, models::ParseJobSpec(task.job_config(), Where(task)));
  if (absl::Status allowed = CheckJobAgainstPolicy(options_->policy, job); !allowed.ok()) {
    return Refuse(task, std::string(allowed.message()));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<models::ModelImpl> model, BuildJobModel(job));
  ASSIGN_OR_RETURN(std::vector<TensorBuffer> tensors, models::ModuleTensors(*model));
  std::vector<rpc::TensorView> views;
  for (const TensorBuffer& tensor : tensors) views.push_back(rpc::ViewOf(tensor));
  RETURN_IF_ERROR(link_->UploadUpdate(task.round(), v1::TrainReport(), std::move(views)).status());
  spdlog::info("{}: sent the job's initial model ({} tensors)", Where(task), tensors.size());
  return absl::OkStatus();
}

absl::Status RoundTasks::HandleTrain(const v1::Task& task) {
  const std::string where = Where(task);
  ASSIGN_OR_RETURN(models::JobSpec job, models::ParseJobSpec(task.job_config(), where));
  const SitePolicy& policy = options_->policy;
  if (absl::Status allowed = CheckJobAgainstPolicy(policy, job); !allowed.ok()) {
    return Refuse(task, std::string(allowed.message()));
  }
  if (job.secagg.enabled != task.has_secagg()) {
    return absl::InvalidArgumentError("the task's secure aggregation does not match its job config");
  }
  const std::filesystem::path release_path = ReleasePath(task.round());
  ASSIGN_OR_RETURN(std::optional<LedgerEntry> released,
                   ledger_->FindRelease(task.round().job_id(), static_cast<int64_t>(task.round().round())));
  Release release;
  if (released.has_value()) {
    // The coordinator runs this round again (it restarted): send what was released, spend nothing.
    ASSIGN_OR_RETURN(release, LoadRelease(release_path));
    spdlog::info("{}: already released (ledger entry {}); sending the same update again", where, released->id);
  } else {
    ASSIGN_OR_RETURN(LocalDataset data, LoadLocalDataset(options_->data, job));
    ASSIGN_OR_RETURN(std::string dataset_id, DatasetId(options_->data));
    ASSIGN_OR_RETURN(std::shared_ptr<models::ModelImpl> model, BuildJobModel(job));
    ASSIGN_OR_RETURN(std::vector<TensorBuffer> global, link_->DownloadModel(task.round()));
    const crypto::Sha256Digest digest = ModelDigest(global);
    if (std::string(digest.begin(), digest.end()) != task.model_sha256()) {
      return absl::DataLossError(absl::StrCat("the downloaded model's digest ", crypto::ToHex(digest),
                                              " is not the task's ", HexOf(task.model_sha256())));
    }
    RETURN_IF_ERROR(models::LoadModuleTensors(*model, global));
    global.clear();
    Failpoint("agent.after_download");

    // The privacy price of this round, checked against the site's cap before training.
    LocalTrainingOptions training;
    training.round = static_cast<int64_t>(task.round().round());
    training.seed = job.seed * 1000003 + task.round().round();
    training.evaluate = task.evaluate();
    training.progress = training_progress_;
    if (const auto mu = task.fit_config().find("proximal_mu"); mu != task.fit_config().end()) {
      training.proximal_mu = mu->second;
    }
    LedgerMechanism mechanism = LedgerMechanism::None();
    const int64_t n = data.train.size();
    if (job.sample_dp.enabled) {
      ASSIGN_OR_RETURN(models::SampleDpPlan plan, models::PlanSampleDp(job, n));
      mechanism = LedgerMechanism{.name = "poisson_gaussian",
                                  .sampling_rate = plan.sampling_rate,
                                  .noise_multiplier = plan.noise_multiplier,
                                  .steps = plan.steps_per_round,
                                  .max_grad_norm = job.sample_dp.max_grad_norm};
      training.dp = models::DpSgdOptions()
                        .noise_multiplier(plan.noise_multiplier)
                        .max_grad_norm(job.sample_dp.max_grad_norm)
                        .sampling_rate(plan.sampling_rate)
                        .steps(plan.steps_per_round);
    }
    if (job.client_dp.enabled) {
      mechanism.client_clip_norm = job.client_dp.clip_norm;
      mechanism.client_noise_multiplier = job.client_dp.noise_multiplier;
      mechanism.client_contributors = task.has_secagg() ? std::max(1, task.secagg().peers_size()) : 1;
    }
    const double delta = job.sample_dp.enabled ? job.sample_dp.delta : policy.delta;
    ASSIGN_OR_RETURN(SpendProjection projection, ledger_->ProjectSpend(mechanism, delta, policy.delta));
    LedgerEntry entry;
    entry.job_id = task.round().job_id();
    entry.round = static_cast<int64_t>(task.round().round());
    entry.dataset_id = dataset_id;
    entry.mechanism = mechanism;
    entry.delta = delta;
    entry.epsilon_cap = policy.epsilon_max;
    entry.cap_delta = policy.delta;
    entry.model_sha256 = crypto::ToHex(digest);
    if (policy.has_cap() && projection.epsilon_cumulative_after > policy.epsilon_max) {
      const std::string reason = absl::StrFormat(
          "privacy cap: this round would bring site '%s' to epsilon %.4g at delta %g, above its cap of %.4g",
          options_->site_name, projection.epsilon_cumulative_after, policy.delta, policy.epsilon_max);
      entry.reason = reason;
      RETURN_IF_ERROR(ledger_->RecordRefusal(entry).status());
      if (absl::Status synced = Sync(); !synced.ok()) spdlog::warn("{}: {}", where, synced.message());
      return Refuse(task, reason);
    }

    if (workers_ != nullptr) {
      // Under mpirun: the other ranks train their part of every batch (docs/multi-gpu.md).
      RETURN_IF_ERROR(workers_->BeginTrain(task.job_config(), training, n));
      training.collective = workers_->collective();
    }
    absl::StatusOr<LocalTrainingResult> trained_or = TrainLocally(job, model, data, training);
    if (workers_ != nullptr) workers_->EndTrain();
    ASSIGN_OR_RETURN(LocalTrainingResult trained, std::move(trained_or));
    // Client-level DP (DP-FedAvg, McMahan et al. 2018, Alg. 1): clip the update to S; each of the
    // n selected sites adds N(0, (zS)^2 / n), so the sum carries N(0, (zS)^2).
    if (job.client_dp.enabled) {
      RETURN_IF_ERROR(dp::ClipToNorm(trained.update, job.client_dp.clip_norm).status());
      if (job.client_dp.noise_multiplier > 0) {
        const double sites = task.has_secagg() ? std::max(1, task.secagg().peers_size()) : 1.0;
        ASSIGN_OR_RETURN(dp::SecureRng rng, dp::SecureRng::Create());
        RETURN_IF_ERROR(dp::AddGaussianNoise(
            trained.update, job.client_dp.noise_multiplier * job.client_dp.clip_norm / std::sqrt(sites), rng));
      }
    }
    release.update = std::move(trained.update);
    v1::TrainReport& report = release.report;
    report.set_num_examples(trained.num_examples);
    for (const auto& [name, value] : trained.train_metrics) (*report.mutable_train_metrics())[name] = value;
    report.set_validation_examples(trained.validation_examples);
    for (const auto& [name, value] : trained.validation_metrics) (*report.mutable_validation_metrics())[name] = value;
    report.set_seconds(trained.seconds);
    if (trained.dp.has_value()) entry.mechanism.steps = trained.dp->steps;
    entry.update_sha256 = crypto::ToHex(crypto::Sha256(std::span<const uint8_t>(
        reinterpret_cast<const uint8_t*>(release.update.data()), release.update.size() * sizeof(float))));
    // The release file first, then the ledger row, then (after the coordinator's receipt) the
    // upload: a crash before the row leaves an uncharged file that the round's re-run replaces;
    // a crash after it leaves a charged round whose file is sent again, never an uncharged one
    // that was sent.
    ASSIGN_OR_RETURN(SpendProjection spend, ledger_->ProjectSpend(entry.mechanism, delta, policy.delta));
    report.set_epsilon_spent(spend.epsilon_release);
    report.set_epsilon_cumulative(spend.epsilon_cumulative_after);
    RETURN_IF_ERROR(SaveRelease(release_path, release));
    Failpoint("agent.before_ledger_write");
    ASSIGN_OR_RETURN(LedgerEntry recorded, ledger_->RecordRelease(entry));
    Failpoint("agent.after_ledger_write");
    spdlog::info("{}: trained on {} examples in {:.1f} s; epsilon this round {:.4g}, site total {:.4g} (delta {:g})",
                 where, trained.num_examples, trained.seconds, recorded.epsilon_release,
                 recorded.epsilon_cumulative, policy.delta);
  }

  // The coordinator logs the entry (and returns its receipt) before it gets the update; an entry
  // recorded before a crash, not yet sent, goes first.
  RETURN_IF_ERROR(Sync());
  Failpoint("agent.after_receipt");
  if (task.has_secagg()) {
    SecAggSession session(task, *identity_, link_, options_->site_name);
    return session.Run(release);
  }
  RETURN_IF_ERROR(link_->UploadUpdate(task.round(), release.report, {FloatView("update", release.update)}).status());
  Failpoint("agent.after_upload");
  return absl::OkStatus();
}

}  // namespace fedattn::agent
