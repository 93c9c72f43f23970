#include "fedattn/agent/local_training.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/models/data.h"
#include "fedattn/models/tokenizer.h"
#include "fedattn/parallel/collective.h"

namespace fedattn::agent {
namespace {

std::map<std::string, double> MetricMapOf(const models::Metrics& metrics) {
  std::map<std::string, double> out{{"loss", metrics.loss}};
  if (metrics.regression) {
    out["rmse"] = metrics.rmse;
    out["r2"] = metrics.r2;
  } else {
    out["accuracy"] = metrics.accuracy;
    out["macro_f1"] = metrics.macro_f1;
    if (std::isfinite(metrics.roc_auc)) out["roc_auc"] = metrics.roc_auc;
  }
  return out;
}

}  // namespace

absl::StatusOr<LocalDataset> LoadLocalDataset(const SiteData& data, const models::JobSpec& job) {
  if (data.path.empty()) {
    return absl::FailedPreconditionError("this site has no data: add a `data:` section with `path:` to site.yaml");
  }
  LocalDataset out;
  try {
    if (job.data.kind == models::DataKind::kTabular) {
      ASSIGN_OR_RETURN(models::TabularTable table, models::ReadTabularCsv(data.path, job.data.schema));
      const models::Split split = models::SplitRows(table.labels, !job.data.schema.regression,
                                                    job.data.validation_fraction, job.seed);
      if (split.train.empty()) {
        return absl::FailedPreconditionError(absl::StrCat(data.path.string(), " has no training rows"));
      }
      const models::TabularStats stats = models::FitTabularStats(table, job.data.schema, split.train);
      out.train = models::MakeTabularTensors(table, job.data.schema, stats, split.train);
      if (!split.validation.empty()) {
        out.validation = models::MakeTabularTensors(table, job.data.schema, stats, split.validation);
      }
      return out;
    }
    ASSIGN_OR_RETURN(std::vector<models::TextExample> examples, models::ReadTextExamples(data.path, job.data.text));
    if (job.data.vocab.empty()) {
      return absl::InvalidArgumentError("text jobs need job.data.vocab (the vocabulary every site tokenizes with)");
    }
    ASSIGN_OR_RETURN(models::WordPieceTokenizer tokenizer, models::WordPieceTokenizer::FromVocabFile(job.data.vocab));
    std::vector<double> labels;
    for (const models::TextExample& example : examples) labels.push_back(static_cast<double>(example.label));
    const models::Split split = models::SplitRows(labels, true, job.data.validation_fraction, job.seed);
    const int64_t max_length = std::min(job.data.max_length, job.model.text().max_positions());
    auto encode = [&](const std::vector<int64_t>& rows) {
      std::vector<std::string> texts, pairs;
      std::vector<int64_t> y;
      for (int64_t row : rows) {
        texts.push_back(examples[static_cast<size_t>(row)].text);
        pairs.push_back(examples[static_cast<size_t>(row)].text_pair);
        y.push_back(examples[static_cast<size_t>(row)].label);
      }
      models::Batch batch = tokenizer.EncodeBatch(texts, pairs, max_length);
      batch.labels = torch::tensor(y, torch::kInt64);
      return batch;
    };
    out.train = encode(split.train);
    if (!split.validation.empty()) out.validation = encode(split.validation);
    return out;
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("loading ", data.path.string(), ": ", e.what_without_backtrace()));
  }
}

absl::StatusOr<std::shared_ptr<models::ModelImpl>> BuildJobModel(const models::JobSpec& job) {
  try {
    return models::BuildModel(job.model, job.seed);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("building the job's model: ", e.what_without_backtrace()));
  }
}

absl::StatusOr<LocalTrainingResult> TrainLocally(const models::JobSpec& job, std::shared_ptr<models::ModelImpl> model,
                                                 const LocalDataset& data, const LocalTrainingOptions& options) {
  models::TrainerOptions trainer_options;
  trainer_options.optimizer().lr(job.local.lr).weight_decay(job.local.weight_decay);
  trainer_options.batch_size(job.local.batch_size)
      .warmup_steps(job.local.warmup_steps)
      .decay(job.local.decay == "cosine"   ? models::LrDecay::kCosine
             : job.local.decay == "linear" ? models::LrDecay::kLinear
                                           : models::LrDecay::kConstant)
      .seed(options.seed)
      .threads(job.local.threads)
      .device(job.local.device)
      .log_every(0);
  const int64_t n = data.train.size();
  const int64_t batches_per_epoch = (n + job.local.batch_size - 1) / job.local.batch_size;
  int64_t epochs = job.local.epochs;
  if (epochs <= 0) epochs = std::max<int64_t>(1, (job.local.steps + batches_per_epoch - 1) / batches_per_epoch);
  trainer_options.epochs(epochs);

  absl::StatusOr<std::unique_ptr<models::Trainer>> created = models::Trainer::Create(model, trainer_options, nullptr);
  if (options.collective != nullptr) {
    // Every rank got here (workers: after loading their data); stop together if any could not.
    RETURN_IF_ERROR(parallel::AgreeOnStatus(*options.collective, created.status()));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<models::Trainer> trainer, std::move(created));
  if (options.progress) trainer->set_progress_callback(options.progress);
  const bool leader = options.collective == nullptr || options.collective->rank() == 0;
  LocalTrainingResult result;
  result.num_examples = n;
  try {
    trainer->set_collective(options.collective);
    RETURN_IF_ERROR(trainer->SyncModel());  // the global model, from rank 0
    const torch::Tensor before = trainer->flat().params().detach().clone();
    if (options.dp.has_value()) {
      RETURN_IF_ERROR(trainer->EnableDpSgd(*options.dp));
    }
    if (options.proximal_mu > 0) {
      // FedProx (Li et al. 2020, "Federated Optimization in Heterogeneous Networks", eq. 2): the
      // gradient mu (w - w_global) of (mu/2)||w - w_global||^2 is data-independent, so adding it
      // after DP-SGD's clipping and noise leaves the privacy guarantee unchanged.
      trainer->AddGradientHook([mu = options.proximal_mu, before](models::FlatParameters* flat) {
        torch::NoGradGuard no_grad;
        flat->grads().add_(flat->params() - before, mu);
      });
    }
    ASSIGN_OR_RETURN(models::TrainResult trained, trainer->Fit(data.train, models::Batch()));
    result.steps = trained.steps;
    result.seconds = trained.seconds;
    result.dp = trained.dp_sgd;
    if (!trained.history.empty()) result.train_metrics["loss"] = trained.history.back().train_loss;
    if (options.evaluate && data.validation.size() > 0 && leader) {
      ASSIGN_OR_RETURN(models::Metrics metrics, trainer->Evaluate(data.validation));
      result.validation_examples = data.validation.size();
      result.validation_metrics = MetricMapOf(metrics);
    }
    const torch::Tensor delta = (trainer->flat().params().detach() - before).to(torch::kCPU).contiguous();
    result.update.assign(delta.data_ptr<float>(), delta.data_ptr<float>() + delta.numel());
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("local training: ", e.what_without_backtrace()));
  }
  return result;
}

}  // namespace fedattn::agent
