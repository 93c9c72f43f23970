#include "fedattn/coordinator/job_runner.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "fedattn/common/failpoint.h"
#include "fedattn/common/files.h"
#include "fedattn/common/logging.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/coordinator/strategy/strategy_factory.h"
#include "fedattn/crypto/certificate.h"
#include "fedattn/rpc/secagg_wire.h"
#include "fedattn/secagg/encoding.h"
#include "fedattn/secagg/identity.h"
#include "fedattn/tensor/safetensors.h"

namespace fedattn::coordinator {
namespace {

std::string RandomNonce() {
  std::string nonce(16, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()), static_cast<int>(nonce.size()));
  return nonce;
}

bool Settled(const std::string& status) {
  return status == "contributed" || status == "refused" || status == "failed" || status == "dropped";
}

// Example-weighted means of the sites' metrics (validation metrics by validation examples).
MetricMap WeightedMetrics(const std::vector<const v1::TrainReport*>& reports, bool validation) {
  std::map<std::string, std::pair<double, double>> sums;
  for (const v1::TrainReport* report : reports) {
    const double weight = static_cast<double>(validation ? report->validation_examples() : report->num_examples());
    if (weight <= 0) continue;
    const auto& metrics = validation ? report->validation_metrics() : report->train_metrics();
    for (const auto& [name, value] : metrics) {
      if (!std::isfinite(value)) continue;
      sums[name].first += weight * value;
      sums[name].second += weight;
    }
  }
  MetricMap out;
  for (const auto& [name, sum] : sums) out[name] = sum.first / sum.second;
  return out;
}

std::filesystem::path CheckpointPath(const std::filesystem::path& dir, int64_t round) {
  return dir / absl::StrCat("round-", round, ".safetensors");
}
std::filesystem::path StrategyStatePath(const std::filesystem::path& dir, int64_t round) {
  return dir / absl::StrCat("strategy-", round, ".safetensors");
}

}  // namespace

absl::StatusOr<std::unique_ptr<JobRunner>> JobRunner::Start(JobContext context, JobRecord job) {
  ASSIGN_OR_RETURN(models::JobSpec spec, models::ParseJobSpec(job.config, absl::StrCat("job ", job.id)));
  if (!spec.model.pretrained().empty()) {
    return absl::UnimplementedError(absl::StrCat(
        "job '", job.id, "': federated jobs from a pretrained model are not supported yet (the coordinator "
        "cannot know the tensors of a model it has not seen); use a model config"));
  }
  ASSIGN_OR_RETURN(models::ModelSpec model_spec, models::BuildModelSpec(spec.model));
  std::unique_ptr<JobRunner> runner(new JobRunner(context, std::move(job), std::move(spec), std::move(model_spec)));
  ASSIGN_OR_RETURN(runner->strategy_,
                   strategy::MakeStrategy(runner->spec_.strategy, static_cast<int>(runner->spec_.sites.min_sites)));
  runner->thread_ = std::thread([r = runner.get()] { r->Main(); });
  return runner;
}

JobRunner::JobRunner(JobContext context, JobRecord job, models::JobSpec spec, models::ModelSpec model_spec)
    : context_(context), job_(std::move(job)), spec_(std::move(spec)), model_spec_(std::move(model_spec)) {}

JobRunner::~JobRunner() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    cv_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

void JobRunner::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  cv_.SignalAll();
}

std::filesystem::path JobRunner::JobDir() const { return context_.options->state_dir / "jobs" / job_.id; }

void JobRunner::Main() {
  const absl::Status status = RunJob();
  bool cancelled, stopping;
  {
    absl::MutexLock lock(&mu_);
    cancelled = cancelled_;
    stopping = stopping_;
    phase_ = Phase::kIdle;
    slots_.clear();
  }
  const absl::Time now = context_.clock->Now();
  if (cancelled) {
    spdlog::info("job '{}' cancelled", job_.id);
    (void)context_.store->SetJobState(job_.id, "cancelled", "cancelled by an operator", now);
    LogEvent("job_finished", {{"job", job_.id}, {"state", "cancelled"}, {"error", ""}});
  } else if (stopping) {
    spdlog::info("job '{}' paused: the coordinator is stopping (it resumes on restart)", job_.id);
  } else if (!status.ok()) {
    spdlog::error("job '{}' failed: {}", job_.id, status.message());
    (void)context_.store->SetJobState(job_.id, "failed", std::string(status.message()), now);
    LogEvent("job_finished", {{"job", job_.id}, {"state", "failed"}, {"error", std::string(status.message())}});
  } else {
    spdlog::info("job '{}' completed: {} round(s)", job_.id, spec_.rounds);
    LogEvent("job_finished", {{"job", job_.id}, {"state", "completed"}, {"error", ""}});
  }
  finished_ = true;
}

bool JobRunner::WaitUntil(absl::Time deadline, const std::function<bool()>& done) {
  while (!done()) {
    if (cancelled_ || stopping_) return false;
    if (cv_.WaitWithDeadline(&mu_, deadline) && absl::Now() >= deadline) return done();
  }
  return true;
}

absl::Status JobRunner::RunJob() {
  RETURN_IF_ERROR(context_.store->SetJobState(job_.id, "running", "", context_.clock->Now()));
  RETURN_IF_ERROR(EnsureDirectory(JobDir(), 0700));
  ASSIGN_OR_RETURN(JobRecord current, context_.store->GetJob(job_.id));
  if (context_.audit != nullptr) {
    // A round logged as committed whose commit never reached the job store (the coordinator
    // stopped in between) runs again: the log says so before it does.
    for (int64_t round : context_.audit->CommittedRounds(job_.id)) {
      if (round <= current.committed_rounds) continue;
      RETURN_IF_ERROR(context_.audit
                          ->Append("round_abandoned",
                                   {{"job", job_.id},
                                    {"round", round},
                                    {"reason", "the coordinator stopped before the round's commit was durable; "
                                               "the round runs again"}})
                          .status());
    }
  }
  if (current.committed_rounds > 0) {
    RETURN_IF_ERROR(LoadCommitted(current.committed_rounds));
    PruneRoundFiles(JobDir(), current.committed_rounds, spec_.checkpoint_every);
    spdlog::info("job '{}' resumes after round {} of {}", job_.id, current.committed_rounds, spec_.rounds);
  } else {
    RETURN_IF_ERROR(EnsureInitialModel());
  }
  for (int64_t round = current.committed_rounds + 1; round <= spec_.rounds; ++round) {
    for (int attempt = 1;; ++attempt) {
      absl::StatusOr<bool> committed = RunRound(round);
      {
        absl::MutexLock lock(&mu_);
        phase_ = Phase::kIdle;
        open_strategy_ = nullptr;
        secagg_.reset();
        for (const auto& [name, slot] : slots_) context_.tasks->Clear(name);
        slots_.clear();
        if (cancelled_ || stopping_) return absl::CancelledError("stopped");
      }
      if (committed.ok() && *committed) break;
      const std::string error = committed.ok() ? "the round did not complete" : std::string(committed.status().message());
      spdlog::warn("job '{}' round {} attempt {} failed: {}", job_.id, round, attempt, error);
      RETURN_IF_ERROR(context_.store->SetRoundState(job_.id, round, "failed", error, context_.clock->Now()));
      if (attempt >= kMaxRoundAttempts) {
        return absl::FailedPreconditionError(
            absl::StrCat("round ", round, " failed ", attempt, " times; last: ", error));
      }
      absl::MutexLock lock(&mu_);
      WaitUntil(absl::Now() + absl::Seconds(2 * attempt), [] { return false; });
      if (cancelled_ || stopping_) return absl::CancelledError("stopped");
    }
  }
  return absl::OkStatus();
}

absl::Status JobRunner::LoadCommitted(int64_t round) {
  ASSIGN_OR_RETURN(GlobalModel model, GlobalModel::Load(model_spec_, CheckpointPath(JobDir(), round)));
  if (std::filesystem::exists(StrategyStatePath(JobDir(), round))) {
    ASSIGN_OR_RETURN(SafetensorsFile file, LoadSafetensors(StrategyStatePath(JobDir(), round)));
    std::vector<strategy::NamedBuffer> state;
    for (const TensorBuffer& tensor : file.tensors) {
      strategy::NamedBuffer buffer{tensor.name, std::vector<float>(tensor.data.size() / sizeof(float))};
      std::memcpy(buffer.values.data(), tensor.data.data(), buffer.values.size() * sizeof(float));
      state.push_back(std::move(buffer));
    }
    RETURN_IF_ERROR(strategy_->RestoreState(state));
  }
  absl::WriterMutexLock lock(&model_mu_);
  model_ = std::move(model);
  ++model_version_;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> JobRunner::SelectSites(int64_t round) {
  const size_t needed = static_cast<size_t>(spec_.sites.min_sites);
  const absl::Time give_up = absl::Now() + absl::Seconds(spec_.train_deadline_s);
  std::vector<std::string> online;
  std::map<std::string, std::string> unaffordable;  // site -> why its budget cannot afford the round
  while (true) {
    online.clear();
    unaffordable.clear();
    ASSIGN_OR_RETURN(std::vector<SiteRecord> sites, context_.registry->List());
    const absl::Time now = context_.clock->Now();
    for (const SiteRecord& site : sites) {
      if (now - site.last_seen > absl::Milliseconds(context_.options->online_window_ms)) continue;
      ASSIGN_OR_RETURN(std::optional<std::string> why, BudgetRefusal(site.name, round));
      if (why.has_value()) {
        unaffordable[site.name] = *why;
      } else {
        online.push_back(site.name);
      }
    }
    if (online.size() >= needed) break;
    absl::MutexLock lock(&mu_);
    if (absl::Now() >= give_up) {
      return absl::UnavailableError(absl::StrCat(
          "only ", online.size(), " site(s) online", unaffordable.empty() ? "" : " that can afford the round",
          ", the job needs ", needed, " (sites.min_sites)",
          unaffordable.empty() ? "" : absl::StrCat("; ", unaffordable.size(),
                                                   " more cannot under their privacy caps: ",
                                                   unaffordable.begin()->second)));
    }
    WaitUntil(absl::Now() + absl::Seconds(1), [] { return false; });
    if (cancelled_ || stopping_) return absl::CancelledError("stopped");
  }
  std::sort(online.begin(), online.end());
  // Site sampling (the job's seed and the round): reproducible, and public to every party.
  std::mt19937_64 random(spec_.seed * 1000003 + static_cast<uint64_t>(round));
  std::shuffle(online.begin(), online.end(), random);
  const size_t wanted = std::max(needed, static_cast<size_t>(std::ceil(spec_.sites.fraction * online.size())));
  online.resize(std::min(online.size(), wanted));
  std::sort(online.begin(), online.end());
  for (const auto& [site, why] : unaffordable) {
    spdlog::warn("job '{}' round {}: site '{}' not selected: {}", job_.id, round, site, why);
    RETURN_IF_ERROR(context_.store->PutRoundSite(job_.id, round, RoundSiteRecord{site, "refused", why, 0, 0, 0}));
  }
  return online;
}

absl::StatusOr<std::optional<std::string>> JobRunner::BudgetRefusal(const std::string& site, int64_t round) {
  if (context_.audit == nullptr || round == 0) return std::nullopt;  // the init task releases nothing
  ASSIGN_OR_RETURN(std::optional<audit::AuditTrail::Budget> budget, context_.audit->BudgetOf(site, job_.id));
  if (!budget.has_value() || std::isinf(budget->cap)) return std::nullopt;
  const double projected = budget->after_next_round.value_or(budget->spent);
  if (projected <= budget->cap && budget->spent < budget->cap) return std::nullopt;
  const std::string why = absl::StrFormat(
      "coordinator: the site's logged privacy budget cannot afford round %d (epsilon %.4g spent of its cap %.4g at "
      "delta %g; this job's round would bring it to %.4g)",
      round, budget->spent, budget->cap, budget->cap_delta, projected);
  RETURN_IF_ERROR(context_.audit
                      ->Append("site_skipped", {{"job", job_.id},
                                                {"round", round},
                                                {"site", site},
                                                {"reason", why},
                                                {"spent", budget->spent},
                                                {"projected", projected},
                                                {"cap", budget->cap}})
                      .status());
  return why;
}

void JobRunner::LogEvent(absl::string_view type, nlohmann::json data) {
  if (context_.audit == nullptr) return;
  const absl::Status status = context_.audit->Append(type, std::move(data)).status();
  if (!status.ok()) spdlog::error("job '{}': cannot write '{}' to the audit log: {}", job_.id, type, status.message());
}

absl::Status JobRunner::LogRoundCommitted(int64_t round, const std::string& model_sha256) {
  if (context_.audit == nullptr) return absl::OkStatus();
  nlohmann::json sites = nlohmann::json::array();
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, slot] : slots_) sites.push_back({{"site", name}, {"status", slot.status}});
  }
  // Durable, and covered by a signed checkpoint, before the round's commit releases the model.
  RETURN_IF_ERROR(context_.audit
                      ->Append("round_committed",
                               {{"job", job_.id}, {"round", round}, {"model_sha256", model_sha256}, {"sites", sites}})
                      .status());
  return context_.audit->Checkpoint();
}

v1::Task JobRunner::MakeTask(const std::string& kind, int64_t round, const SiteSlot& slot, absl::Time deadline,
                             const v1::SecAggRound* secagg) const {
  v1::Task task;
  task.mutable_round()->set_job_id(job_.id);
  task.mutable_round()->set_round(static_cast<uint64_t>(round));
  task.mutable_round()->set_nonce(slot.nonce);
  task.set_kind(kind);
  task.set_job_config(job_.config);
  task.set_deadline_unix_ms(absl::ToUnixMillis(deadline));
  if (kind == "train") {
    for (const auto& [key, value] : strategy_->ConfigureFit(static_cast<int>(round))) {
      (*task.mutable_fit_config())[key] = value;
    }
    task.set_evaluate(spec_.evaluate_every > 0 && (round % spec_.evaluate_every == 0 || round == spec_.rounds));
    absl::ReaderMutexLock lock(&model_mu_);
    task.set_model_sha256(model_.digest().data(), model_.digest().size());
  }
  if (secagg != nullptr) {
    *task.mutable_secagg() = *secagg;
    task.mutable_secagg()->set_site_id(slot.secagg_id);
  }
  return task;
}

void JobRunner::RecordSite(int64_t round, const SiteSlot& slot) {
  RoundSiteRecord record{slot.name, slot.status, slot.reason, 0, 0, 0};
  if (slot.report.has_value()) {
    record.num_examples = slot.report->num_examples();
    record.epsilon_spent = slot.report->epsilon_spent();
    record.epsilon_cumulative = slot.report->epsilon_cumulative();
  }
  const absl::Status status = context_.store->PutRoundSite(job_.id, round, record);
  if (!status.ok()) spdlog::error("job '{}' round {}: cannot record site '{}': {}", job_.id, round, slot.name, status.message());
}

absl::Status JobRunner::EnsureInitialModel() {
  const std::filesystem::path path = CheckpointPath(JobDir(), 0);
  if (std::filesystem::exists(path)) {
    RETURN_IF_ERROR(LoadCommitted(0));
    return FinishInitialCommit();
  }
  RETURN_IF_ERROR(context_.store->StartRound(job_.id, 0, context_.clock->Now()));
  std::string last_error = "no site answered";
  for (int attempt = 1; attempt <= kMaxRoundAttempts; ++attempt) {
    ASSIGN_OR_RETURN(std::vector<std::string> sites, SelectSites(0));
    const std::string site = sites[static_cast<size_t>(attempt - 1) % sites.size()];
    const absl::Time deadline = absl::Now() + absl::Seconds(spec_.train_deadline_s);
    std::optional<std::vector<TensorBuffer>> tensors;
    {
      absl::MutexLock lock(&mu_);
      round_ = 0;
      phase_ = Phase::kInit;
      slots_.clear();
      init_tensors_.reset();
      SiteSlot slot;
      slot.name = site;
      slot.nonce = RandomNonce();
      slot.task = MakeTask("init", 0, slot, deadline, nullptr);
      context_.tasks->Post(site, *slot.task);
      slots_[site] = slot;
      WaitUntil(deadline, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return init_tensors_.has_value() || Settled(slots_[site].status);
      });
      if (cancelled_ || stopping_) return absl::CancelledError("stopped");
      tensors = std::move(init_tensors_);
      init_tensors_.reset();
      if (!tensors.has_value()) {
        last_error = slots_[site].reason.empty() ? absl::StrCat("site '", site, "' sent no initial model in time")
                                                 : absl::StrCat("site '", site, "': ", slots_[site].reason);
      }
      context_.tasks->Clear(site);
      slots_.clear();
      phase_ = Phase::kIdle;
    }
    if (!tensors.has_value()) {
      spdlog::warn("job '{}': initial model attempt {}: {}", job_.id, attempt, last_error);
      continue;
    }
    absl::StatusOr<GlobalModel> model =
        GlobalModel::FromTensors(model_spec_, *tensors, absl::StrCat("initial model from site '", site, "'"));
    if (!model.ok()) {
      last_error = std::string(model.status().message());
      continue;
    }
    RETURN_IF_ERROR(model->Save(path));
    Failpoint("coordinator.after_initial_model");
    RETURN_IF_ERROR(LogRoundCommitted(0, crypto::ToHex(model->digest())));
    RETURN_IF_ERROR(context_.store->CommitRound(job_.id, 0, {}, {}, crypto::ToHex(model->digest()),
                                                context_.clock->Now()));
    spdlog::info("job '{}': initial model ({} tensors, {} trainable values) from site '{}'", job_.id,
                 model_spec_.tensors.size(), model->num_trainable(), site);
    absl::WriterMutexLock lock(&model_mu_);
    model_ = std::move(*model);
    ++model_version_;
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat("no initial model: ", last_error));
}

absl::Status JobRunner::FinishInitialCommit() {
  // The coordinator may have stopped after saving the initial model and before committing it:
  // the saved file is the initial model, so its commit (log first, then the store) completes now.
  ASSIGN_OR_RETURN(std::vector<RoundRecord> rounds, context_.store->Rounds(job_.id));
  const bool committed = std::any_of(rounds.begin(), rounds.end(), [](const RoundRecord& round) {
    return round.round == 0 && round.state == "committed";
  });
  if (committed) return absl::OkStatus();
  std::string digest_hex;
  {
    absl::ReaderMutexLock lock(&model_mu_);
    digest_hex = crypto::ToHex(model_.digest());
  }
  spdlog::info("job '{}': committing the initial model saved before the coordinator stopped", job_.id);
  if (context_.audit != nullptr) {
    const std::vector<int64_t> logged = context_.audit->CommittedRounds(job_.id);
    if (std::find(logged.begin(), logged.end(), 0) == logged.end()) {
      RETURN_IF_ERROR(LogRoundCommitted(0, digest_hex));
    }
  }
  return context_.store->CommitRound(job_.id, 0, {}, {}, digest_hex, context_.clock->Now());
}

absl::StatusOr<bool> JobRunner::RunRound(int64_t round) {
  RETURN_IF_ERROR(context_.store->StartRound(job_.id, round, context_.clock->Now()));
  Failpoint("coordinator.after_start_round");
  ASSIGN_OR_RETURN(std::vector<std::string> sites, SelectSites(round));
  int64_t num_trainable;
  crypto::Sha256Digest digest;
  {
    absl::ReaderMutexLock lock(&model_mu_);
    num_trainable = model_.num_trainable();
    digest = model_.digest();
  }
  RETURN_IF_ERROR(strategy_->Begin(static_cast<int>(round), static_cast<size_t>(num_trainable)));
  const absl::Time deadline = absl::Now() + absl::Seconds(spec_.train_deadline_s);
  std::optional<v1::SecAggRound> secagg_round;
  {
    absl::MutexLock lock(&mu_);
    round_ = round;
    slots_.clear();
    unmask_request_.reset();
    secagg_done_ = false;
    for (size_t i = 0; i < sites.size(); ++i) {
      SiteSlot slot;
      slot.name = sites[i];
      slot.nonce = RandomNonce();
      slot.secagg_id = static_cast<secagg::SiteId>(i);
      slots_[sites[i]] = slot;
    }
    if (spec_.secagg.enabled) {
      secagg::SecAggConfig config;
      config.job_id = job_.id;
      config.round = static_cast<uint64_t>(round);
      for (size_t i = 0; i < sites.size(); ++i) config.sites.push_back(static_cast<secagg::SiteId>(i));
      config.vector_length = static_cast<uint64_t>(num_trainable);
      config.degree = static_cast<uint32_t>(spec_.secagg.degree);
      config.threshold = static_cast<uint32_t>(spec_.secagg.threshold);
      config.max_dropout_fraction = spec_.secagg.max_dropout_fraction;
      // The graph seed is public: the model the round starts from and the round number.
      crypto::Sha256Hasher seed;
      seed.Update("fedattn.secagg.graph.v1");
      seed.Update(digest);
      seed.Update(absl::StrCat(job_.id, "/", round));
      config.graph_seed = seed.Finish();
      ASSIGN_OR_RETURN(secagg::SecAggConfig resolved, config.Resolved());
      auto peers = std::make_shared<secagg::PeerDirectory>();
      v1::SecAggRound proto;
      for (size_t i = 0; i < sites.size(); ++i) {
        ASSIGN_OR_RETURN(SiteRecord record, context_.registry->Get(sites[i]));
        if (record.certificate_pem.empty()) {
          return absl::FailedPreconditionError(absl::StrCat("site '", sites[i], "' has no recorded certificate"));
        }
        ASSIGN_OR_RETURN(crypto::X509Ptr cert, crypto::CertificateFromPem(record.certificate_pem));
        RETURN_IF_ERROR(peers->Add(static_cast<secagg::SiteId>(i), X509_get0_pubkey(cert.get())));
        v1::SecAggPeer* peer = proto.add_peers();
        peer->set_site_id(static_cast<uint32_t>(i));
        peer->set_site_name(sites[i]);
        peer->set_certificate_pem(record.certificate_pem);
      }
      ASSIGN_OR_RETURN(secagg_, secagg::SecAggServer::Create(resolved, peers));
      proto.set_degree(resolved.degree);
      proto.set_threshold(resolved.threshold);
      proto.set_max_dropout_fraction(resolved.max_dropout_fraction);
      proto.set_graph_seed(resolved.graph_seed.data(), resolved.graph_seed.size());
      proto.set_vector_length(resolved.vector_length);
      proto.set_stage_timeout_ms(static_cast<uint32_t>(spec_.stage_deadline_s * 1000));
      secagg_round = std::move(proto);
    } else {
      open_strategy_ = strategy_.get();
    }
    phase_ = Phase::kTraining;
    for (auto& [name, slot] : slots_) {
      RecordSite(round, slot);
      slot.task = MakeTask("train", round, slot, deadline, secagg_round.has_value() ? &*secagg_round : nullptr);
      context_.tasks->Post(name, *slot.task);
    }
  }
  spdlog::info("job '{}' round {}/{}: {} site(s) selected: {}", job_.id, round, spec_.rounds, sites.size(),
               absl::StrJoin(sites, ", "));

  if (spec_.secagg.enabled) {
    RETURN_IF_ERROR(RunSecAgg(round, *strategy_));
  } else {
    absl::MutexLock lock(&mu_);
    WaitUntil(deadline, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return std::all_of(slots_.begin(), slots_.end(), [](const auto& entry) { return Settled(entry.second.status); });
    });
    if (cancelled_ || stopping_) return false;
    open_strategy_ = nullptr;
    for (auto& [name, slot] : slots_) {
      if (!Settled(slot.status)) {
        slot.status = "dropped";
        slot.reason = "missed the training deadline";
        RecordSite(round, slot);
      }
      if (slot.status != "contributed") {
        strategy_->AddFailure(strategy::SiteFailure{name, absl::UnavailableError(slot.reason)});
      }
    }
  }

  // Aggregate into the global model and commit.
  {
    absl::MutexLock lock(&mu_);
    phase_ = Phase::kAggregating;
  }
  absl::StatusOr<strategy::RoundSummary> summary;
  {
    absl::WriterMutexLock lock(&model_mu_);
    ++model_version_;  // downloads of the old model stop here
    std::span<float> trainable = model_.ContiguousTrainable();
    if (!trainable.empty()) {
      summary = strategy_->Finish(trainable);
      model_.Rehash();
    } else {
      std::vector<float> values(static_cast<size_t>(model_.num_trainable()));
      model_.GatherTrainable(values);
      summary = strategy_->Finish(values);
      if (summary.ok()) model_.ScatterTrainable(values);
    }
  }
  if (!summary.ok()) return summary.status();
  RETURN_IF_ERROR(Commit(round, *summary));
  return true;
}

absl::Status JobRunner::Commit(int64_t round, const strategy::RoundSummary& summary) {
  const std::filesystem::path dir = JobDir();
  std::string digest_hex;
  {
    absl::ReaderMutexLock lock(&model_mu_);
    RETURN_IF_ERROR(model_.Save(CheckpointPath(dir, round)));
    digest_hex = crypto::ToHex(model_.digest());
  }
  Failpoint("coordinator.after_checkpoint");
  const std::vector<strategy::NamedBuffer> state = strategy_->SaveState();
  if (!state.empty()) {
    std::vector<TensorBuffer> tensors;
    for (const strategy::NamedBuffer& buffer : state) {
      TensorBuffer tensor{buffer.name, DType::kF32, {static_cast<int64_t>(buffer.values.size())}, {}};
      tensor.data.resize(buffer.values.size() * sizeof(float));
      std::memcpy(tensor.data.data(), buffer.values.data(), tensor.data.size());
      tensors.push_back(std::move(tensor));
    }
    RETURN_IF_ERROR(SaveSafetensors(StrategyStatePath(dir, round), tensors));
    Failpoint("coordinator.after_strategy_state");
  }
  MetricMap train_metrics, validation_metrics;
  {
    absl::MutexLock lock(&mu_);
    std::vector<const v1::TrainReport*> reports;
    for (auto& [name, slot] : slots_) {
      if (slot.status == "contributed" && slot.report.has_value()) reports.push_back(&*slot.report);
    }
    train_metrics = WeightedMetrics(reports, false);
    validation_metrics = WeightedMetrics(reports, true);
  }
  RETURN_IF_ERROR(LogRoundCommitted(round, digest_hex));
  Failpoint("coordinator.between_audit_and_commit");
  RETURN_IF_ERROR(context_.store->CommitRound(job_.id, round, train_metrics, validation_metrics, digest_hex,
                                              context_.clock->Now()));
  Failpoint("coordinator.after_commit");
  std::vector<std::string> shown;
  for (const auto& [name, value] : validation_metrics) shown.push_back(absl::StrCat(name, "=", value));
  spdlog::info("job '{}' round {}/{} committed: {} result(s), {} failure(s); validation {}", job_.id, round,
               spec_.rounds, summary.num_results, summary.failures.size(),
               shown.empty() ? "not evaluated" : absl::StrJoin(shown, " "));
  PruneRoundFiles(dir, round, spec_.checkpoint_every);
  return absl::OkStatus();
}

void JobRunner::PruneRoundFiles(const std::filesystem::path& dir, int64_t round, int64_t checkpoint_every) {
  // Files of rounds before the resume point are history: the server optimizer's state goes, and
  // so do the model checkpoints but round 0's and every checkpoint_every-th. A scan rather than
  // round - 1 alone, so files a stopped coordinator left unpruned go on its next start.
  std::error_code error;
  if (!std::filesystem::exists(dir, error)) return;  // a job that failed before its first file
  std::vector<std::filesystem::path> stale;
  for (const std::filesystem::directory_entry& entry : std::filesystem::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    absl::string_view rest = name;
    const bool strategy_state = absl::ConsumePrefix(&rest, "strategy-");
    if (!strategy_state && !absl::ConsumePrefix(&rest, "round-")) continue;
    int64_t number = 0;
    if (!absl::ConsumeSuffix(&rest, ".safetensors") || !absl::SimpleAtoi(rest, &number) || number >= round) continue;
    const bool keep = !strategy_state && (number == 0 || (checkpoint_every > 0 && number % checkpoint_every == 0));
    if (!keep) stale.push_back(entry.path());
  }
  if (error) spdlog::warn("cannot list {} to prune it: {}", dir.string(), error.message());
  for (const std::filesystem::path& path : stale) std::filesystem::remove(path, error);
}

absl::Status JobRunner::RunSecAgg(int64_t round, strategy::Strategy& strategy) {
  const absl::Duration stage = absl::Seconds(spec_.stage_deadline_s);
  const absl::Time train_deadline = absl::Now() + absl::Seconds(spec_.train_deadline_s);
  absl::MutexLock lock(&mu_);
  auto all_past = [&](auto predicate) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return std::all_of(slots_.begin(), slots_.end(), [&](const auto& entry) {
      return entry.second.dropped || Settled(entry.second.status) || predicate(entry.second);
    });
  };
  auto drop_laggards = [&](auto predicate, const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (auto& [name, slot] : slots_) {
      if (slot.dropped || Settled(slot.status) || predicate(slot)) continue;
      slot.dropped = true;
      slot.status = "dropped";
      slot.reason = why;
      RecordSite(round, slot);
    }
  };
  auto stopped = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return cancelled_ || stopping_; };

  // Stage 0: training, then key advertisements (with the training reports).
  auto advertised = [](const SiteSlot& slot) { return slot.report.has_value(); };
  WaitUntil(train_deadline, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return all_past(advertised); });
  if (stopped()) return absl::CancelledError("stopped");
  drop_laggards(advertised, "missed the training deadline");
  ASSIGN_OR_RETURN(std::vector<secagg::NeighbourKeys> neighbour_keys, secagg_->FinishAdvertise());
  double weight_scale = 1;
  for (const auto& [name, slot] : slots_) {
    if (!slot.dropped && slot.report.has_value()) {
      weight_scale = std::max(weight_scale, static_cast<double>(slot.report->num_examples()));
    }
  }
  weight_scale_ = weight_scale;
  for (secagg::NeighbourKeys& keys : neighbour_keys) {
    for (auto& [name, slot] : slots_) {
      if (slot.secagg_id == keys.recipient) slot.neighbour_keys = std::move(keys);
    }
  }
  phase_ = Phase::kShareKeys;
  RETURN_IF_ERROR(context_.store->SetRoundState(job_.id, round, "share_keys", "", context_.clock->Now()));
  Failpoint("coordinator.secagg_share_keys");
  cv_.SignalAll();

  // Stage 1: key shares.
  auto shared = [](const SiteSlot& slot) { return slot.sent_shares; };
  WaitUntil(absl::Now() + stage, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return all_past(shared); });
  if (stopped()) return absl::CancelledError("stopped");
  drop_laggards(shared, "sent no key shares in time");
  ASSIGN_OR_RETURN(std::vector<secagg::SharesForSite> shares, secagg_->FinishShareKeys());
  for (secagg::SharesForSite& message : shares) {
    for (auto& [name, slot] : slots_) {
      if (slot.secagg_id == message.recipient) slot.shares = std::move(message);
    }
  }
  phase_ = Phase::kMaskedInput;
  RETURN_IF_ERROR(context_.store->SetRoundState(job_.id, round, "masked_input", "", context_.clock->Now()));
  Failpoint("coordinator.secagg_masked_input");
  cv_.SignalAll();

  // Stage 2: masked updates (uploads are folded into the sum as they complete).
  auto masked = [](const SiteSlot& slot) { return slot.masked; };
  WaitUntil(absl::Now() + stage + absl::Seconds(spec_.train_deadline_s) / 10,
            [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return all_past(masked); });
  if (stopped()) return absl::CancelledError("stopped");
  drop_laggards(masked, "sent no masked update in time");
  ASSIGN_OR_RETURN(secagg::UnmaskRequest request, secagg_->FinishMaskedInput());
  unmask_request_ = request;
  phase_ = Phase::kUnmask;
  RETURN_IF_ERROR(context_.store->SetRoundState(job_.id, round, "unmask", "", context_.clock->Now()));
  Failpoint("coordinator.secagg_unmask");
  cv_.SignalAll();

  // Stage 3: unmasking by the survivors.
  std::set<secagg::SiteId> survivors(request.survivors.begin(), request.survivors.end());
  auto unmasked = [&](const SiteSlot& slot) { return slot.unmasked || !survivors.count(slot.secagg_id); };
  WaitUntil(absl::Now() + stage, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return all_past(unmasked); });
  if (stopped()) return absl::CancelledError("stopped");
  ASSIGN_OR_RETURN(secagg::AggregateResult result, secagg_->FinishUnmask());
  secagg_done_ = true;
  cv_.SignalAll();

  // Decode Σ (n_k / W) · clip_k(update_k) and scale back by W: Σ n_k · update_k.
  secagg::EncodingOptions encoding{static_cast<float>(spec_.secagg.coordinate_clip),
                                   static_cast<uint32_t>(slots_.size()), 0};
  ASSIGN_OR_RETURN(secagg::Encoder encoder, secagg::Encoder::Create(encoding));
  std::vector<float> weighted_sum(result.sum.size());
  encoder.Decode(result.sum, weighted_sum);
  result.sum = {};
  for (float& value : weighted_sum) value = static_cast<float>(value * weight_scale_);
  double total_weight = 0;
  std::set<secagg::SiteId> contributors(result.contributors.begin(), result.contributors.end());
  for (auto& [name, slot] : slots_) {
    if (contributors.count(slot.secagg_id)) {
      total_weight += static_cast<double>(slot.report->num_examples());
      slot.status = "contributed";
      RecordSite(round, slot);
    } else {
      if (!Settled(slot.status)) {
        slot.status = "dropped";
        if (slot.reason.empty()) slot.reason = "left the secure aggregation";
        RecordSite(round, slot);
      }
      strategy.AddFailure(strategy::SiteFailure{name, absl::UnavailableError(slot.reason)});
    }
  }
  return strategy.AccumulateSum(weighted_sum, total_weight, static_cast<int>(contributors.size()));
}

void JobRunner::RedeliverIfLost(const std::string& site) {
  absl::MutexLock lock(&mu_);
  if (phase_ != Phase::kTraining && !(phase_ == Phase::kInit && !init_tensors_.has_value())) return;
  const auto it = slots_.find(site);
  if (it == slots_.end()) return;
  const SiteSlot& slot = it->second;
  if (slot.dropped || slot.status != "selected" || slot.report.has_value() || !slot.task) return;
  if (absl::FromUnixMillis(slot.task->deadline_unix_ms()) <= absl::Now()) return;
  if (context_.tasks->PostIfEmpty(site, *slot.task)) {
    spdlog::warn("job '{}' round {}: site '{}' is idle without its task (lost on the way, or the agent "
                 "restarted); handing it out again",
                 job_.id, round_, site);
  }
}

absl::Status JobRunner::CheckRoundLocked(const v1::RoundRef& ref, const std::string& site) {
  if (ref.job_id() != job_.id) {
    return absl::InvalidArgumentError(absl::StrCat("message for job '", ref.job_id(), "' sent to job '", job_.id, "'"));
  }
  const auto it = slots_.find(site);
  if (phase_ == Phase::kIdle || static_cast<int64_t>(ref.round()) != round_ || it == slots_.end()) {
    return absl::FailedPreconditionError(absl::StrCat("job '", job_.id, "' round ", ref.round(),
                                                      " is not open for site '", site, "' (current round ",
                                                      round_, ")"));
  }
  if (ref.nonce() != it->second.nonce) {
    return absl::FailedPreconditionError(absl::StrCat("job '", job_.id, "' round ", ref.round(),
                                                      ": stale or replayed message from site '", site, "'"));
  }
  return absl::OkStatus();
}

absl::Status JobRunner::CheckRound(const v1::RoundRef& ref, const std::string& site) {
  absl::MutexLock lock(&mu_);
  return CheckRoundLocked(ref, site);
}

absl::StatusOr<std::vector<rpc::TensorView>> JobRunner::ModelForDownload(const v1::RoundRef& ref,
                                                                         const std::string& site, uint64_t* version) {
  {
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(CheckRoundLocked(ref, site));
    if (phase_ == Phase::kInit) return absl::FailedPreconditionError("an init task has no model to download");
  }
  absl::ReaderMutexLock lock(&model_mu_);
  *version = model_version_.load();
  return model_.Views();
}

absl::StatusOr<std::unique_ptr<UploadSpool>> JobRunner::BeginUpload(const v1::RoundRef& ref, const std::string& site) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckRoundLocked(ref, site));
  if (context_.audit != nullptr && !context_.audit->HasRelease(site, job_.id, static_cast<int64_t>(ref.round()))) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job '", job_.id, "' round ", ref.round(), ": site '", site,
        "' sent an update before its ledger entry for the round was logged (RecordLedgerEntry comes first)"));
  }
  SiteSlot& slot = slots_[site];
  const std::filesystem::path path = JobDir() / absl::StrCat("upload-", ref.round(), "-", site, ".part");
  int64_t length;
  {
    absl::ReaderMutexLock model_lock(&model_mu_);
    length = model_.num_trainable();
  }
  if (spec_.secagg.enabled) {
    if (phase_ != Phase::kMaskedInput || !slot.shares.has_value() || slot.dropped) {
      return absl::FailedPreconditionError(absl::StrCat("job '", job_.id, "' round ", ref.round(), ": site '", site,
                                                        "' may not send a masked update now"));
    }
    return UploadSpool::Create(path, "masked", DType::kU32, length);
  }
  if (phase_ != Phase::kTraining || Settled(slot.status)) {
    return absl::FailedPreconditionError(absl::StrCat("job '", job_.id, "' round ", ref.round(), ": site '", site,
                                                      "' may not send an update now"));
  }
  return UploadSpool::Create(path, "update", DType::kF32, length);
}

absl::Status JobRunner::FinishUpload(const v1::RoundRef& ref, const std::string& site, const v1::TrainReport& report,
                                     std::unique_ptr<UploadSpool> spool) {
  ASSIGN_OR_RETURN(MappedFile mapped, spool->Map());
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckRoundLocked(ref, site));
  SiteSlot& slot = slots_[site];
  if (spec_.secagg.enabled) {
    if (phase_ != Phase::kMaskedInput || slot.dropped || slot.masked) {
      return absl::FailedPreconditionError(absl::StrCat("the masked-input stage is closed for site '", site, "'"));
    }
    std::span<const uint32_t> words(reinterpret_cast<const uint32_t*>(mapped.bytes().data()),
                                    mapped.bytes().size() / sizeof(uint32_t));
    RETURN_IF_ERROR(secagg_->HandleMaskedInput(job_.id, ref.round(), slot.secagg_id, words));
    slot.masked = true;
    cv_.SignalAll();
    return absl::OkStatus();
  }
  if (open_strategy_ == nullptr || Settled(slot.status)) {
    return absl::FailedPreconditionError(absl::StrCat("round ", ref.round(), " no longer takes updates"));
  }
  slot.report = report;
  strategy::FitResult result;
  result.site = site;
  result.num_examples = report.num_examples();
  result.update = std::span<const float>(reinterpret_cast<const float*>(mapped.bytes().data()),
                                         mapped.bytes().size() / sizeof(float));
  for (const auto& [name, value] : report.train_metrics()) result.metrics[name] = value;
  const absl::Status accepted = open_strategy_->Accumulate(result);
  if (accepted.ok()) {
    slot.status = "contributed";
  } else {
    slot.status = "failed";
    slot.reason = std::string(accepted.message());
  }
  RecordSite(round_, slot);
  cv_.SignalAll();
  if (!accepted.ok()) {
    return absl::Status(accepted.code(), absl::StrCat("job '", job_.id, "' round ", ref.round(), ": ", accepted.message()));
  }
  return accepted;
}

absl::Status JobRunner::FinishInitUpload(const v1::RoundRef& ref, const std::string& site,
                                         std::vector<TensorBuffer> tensors) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckRoundLocked(ref, site));
  if (phase_ != Phase::kInit) return absl::FailedPreconditionError("no initial model was asked for");
  if (init_tensors_.has_value()) {
    return absl::FailedPreconditionError(absl::StrCat("site '", site, "' already sent the initial model"));
  }
  const absl::Status valid =
      GlobalModel::FromTensors(model_spec_, tensors, absl::StrCat("initial model from site '", site, "'")).status();
  if (!valid.ok()) {
    // The runner tries the next site at once instead of waiting for the deadline.
    slots_[site].status = "failed";
    slots_[site].reason = std::string(valid.message());
    cv_.SignalAll();
    return valid;
  }
  init_tensors_ = std::move(tensors);
  cv_.SignalAll();
  return absl::OkStatus();
}

rpc::StreamLimits JobRunner::InitUploadLimits() const {
  rpc::StreamLimits limits;
  limits.max_total_bytes = 0;
  for (const models::TensorSpec& tensor : model_spec_.tensors) {
    limits.max_total_bytes += static_cast<uint64_t>(tensor.numel()) * DTypeSize(tensor.dtype);
  }
  limits.max_tensors = static_cast<uint32_t>(model_spec_.tensors.size());
  return limits;
}

absl::Status JobRunner::ReportTask(const v1::ReportTaskRequest& request, const std::string& site) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckRoundLocked(request.round(), site));
  SiteSlot& slot = slots_[site];
  if (Settled(slot.status)) return absl::OkStatus();
  slot.status = request.outcome() == v1::ReportTaskRequest::REFUSED ? "refused" : "failed";
  slot.reason = request.reason().empty() ? "no reason given" : request.reason();
  slot.dropped = true;
  spdlog::warn("job '{}' round {}: site '{}' {}: {}", job_.id, round_, site, slot.status, slot.reason);
  if (round_ > 0) RecordSite(round_, slot);
  LogEvent(slot.status == "refused" ? "site_refused" : "site_failed",
           {{"job", job_.id}, {"round", round_}, {"site", site}, {"reason", slot.reason}});
  cv_.SignalAll();
  return absl::OkStatus();
}

absl::StatusOr<v1::SecAggStepResponse> JobRunner::SecAggStep(const v1::SecAggStepRequest& request,
                                                             const std::string& site) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckRoundLocked(request.round(), site));
  if (secagg_ == nullptr) return absl::FailedPreconditionError("this round is not securely aggregated");
  SiteSlot* slot = &slots_[site];
  if (slot->dropped) {
    return absl::FailedPreconditionError(absl::StrCat("site '", site, "' has left this round: ", slot->reason));
  }
  const std::string& job_id = job_.id;
  const uint64_t round = request.round().round();
  switch (request.message_case()) {
    case v1::SecAggStepRequest::kAdvertisement: {
      if (phase_ != Phase::kTraining || slot->report.has_value()) {
        return absl::FailedPreconditionError(
            absl::StrCat("job '", job_id, "' round ", round, ": key advertisements are closed for site '", site, "'"));
      }
      if (request.report().num_examples() <= 0) {
        return absl::InvalidArgumentError(absl::StrCat("site '", site, "' reports ", request.report().num_examples(),
                                                       " training examples; a securely aggregated update needs at "
                                                       "least one"));
      }
      ASSIGN_OR_RETURN(secagg::KeyAdvertisement advertisement, rpc::FromProto(request.advertisement(), job_id, round));
      if (advertisement.sender != slot->secagg_id) return absl::PermissionDeniedError("advertisement for another site");
      RETURN_IF_ERROR(secagg_->HandleAdvertisement(advertisement));
      slot->report = request.report();
      slot->status = "trained";
      RecordSite(round_, *slot);
      cv_.SignalAll();
      break;
    }
    case v1::SecAggStepRequest::kShareKeys: {
      if (phase_ != Phase::kShareKeys || slot->sent_shares) {
        return absl::FailedPreconditionError(
            absl::StrCat("job '", job_id, "' round ", round, ": key sharing is closed for site '", site, "'"));
      }
      ASSIGN_OR_RETURN(secagg::ShareKeysMessage message, rpc::FromProto(request.share_keys(), job_id, round));
      if (message.sender != slot->secagg_id) return absl::PermissionDeniedError("key shares for another site");
      RETURN_IF_ERROR(secagg_->HandleShareKeys(message));
      slot->sent_shares = true;
      cv_.SignalAll();
      break;
    }
    case v1::SecAggStepRequest::kUnmask: {
      if (phase_ != Phase::kUnmask || slot->unmasked) {
        return absl::FailedPreconditionError(
            absl::StrCat("job '", job_id, "' round ", round, ": unmasking is closed for site '", site, "'"));
      }
      ASSIGN_OR_RETURN(secagg::UnmaskResponse message, rpc::FromProto(request.unmask(), job_id, round));
      if (message.sender != slot->secagg_id) return absl::PermissionDeniedError("unmask response for another site");
      RETURN_IF_ERROR(secagg_->HandleUnmask(message));
      slot->unmasked = true;
      cv_.SignalAll();
      break;
    }
    case v1::SecAggStepRequest::MESSAGE_NOT_SET:
      break;
  }
  v1::SecAggStepResponse response;
  const int64_t wait_ms = std::min<int64_t>(request.wait_ms(), context_.options->max_pull_wait_ms);
  const absl::Time deadline = absl::Now() + absl::Milliseconds(wait_ms);
  const uint32_t await = request.await_stage();
  const int64_t my_round = round_;
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (round_ != my_round || phase_ == Phase::kIdle) return true;
    slot = &slots_[site];
    if (slot->dropped) return true;
    switch (await) {
      case 1: return slot->neighbour_keys.has_value();
      case 2: return slot->shares.has_value();
      case 3: return unmask_request_.has_value();
      case 4: return secagg_done_;
      default: return true;
    }
  };
  while (!ready() && !cancelled_ && !stopping_) {
    if (cv_.WaitWithDeadline(&mu_, deadline)) break;
  }
  if (round_ != my_round || phase_ == Phase::kIdle) {
    return absl::FailedPreconditionError(absl::StrCat("job '", job_id, "' round ", round, " is over"));
  }
  slot = &slots_[site];
  if (slot->dropped) {
    return absl::FailedPreconditionError(absl::StrCat("site '", site, "' has left this round: ", slot->reason));
  }
  switch (await) {
    case 1:
      if (slot->neighbour_keys.has_value()) {
        response.set_ready(true);
        v1::SecAggNeighbourKeys* keys = response.mutable_neighbour_keys();
        *keys = rpc::ToProto(*slot->neighbour_keys);
        keys->set_weight_scale(weight_scale_);
        keys->set_coordinate_clip(static_cast<float>(spec_.secagg.coordinate_clip));
        keys->set_max_sites(static_cast<uint32_t>(slots_.size()));
      }
      break;
    case 2:
      if (slot->shares.has_value()) {
        response.set_ready(true);
        *response.mutable_shares() = rpc::ToProto(*slot->shares);
      }
      break;
    case 3:
      if (unmask_request_.has_value()) {
        response.set_ready(true);
        *response.mutable_unmask_request() = rpc::ToProto(*unmask_request_);
      }
      break;
    case 4:
      response.set_ready(secagg_done_);
      response.set_round_done(secagg_done_);
      break;
    default:
      response.set_ready(true);
  }
  return response;
}

}  // namespace fedattn::coordinator
