#include "fedattn/models/central_training.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/config/yaml_reader.h"
#include "fedattn/dp/calibration.h"
#include "fedattn/models/checkpoint.h"
#include "fedattn/models/tokenizer.h"
#include "fedattn/parallel/collective.h"
#include "status_util.h"

namespace fedattn::models {
namespace {

// Tabular: whole splits as tensors; statistics fitted on the training rows only.
absl::Status LoadTabular(const TrainConfig& config, Batch* train, Batch* validation) {
  ASSIGN_OR_RETURN(TabularTable table, ReadTabularCsv(config.data_path, config.schema));
  const Split split = SplitRows(table.labels, !config.schema.regression, config.validation_fraction, config.split_seed);
  const TabularStats stats = FitTabularStats(table, config.schema, split.train);
  *train = MakeTabularTensors(table, config.schema, stats, split.train);
  if (!split.validation.empty()) *validation = MakeTabularTensors(table, config.schema, stats, split.validation);
  return absl::OkStatus();
}

absl::Status LoadText(const TrainConfig& config, int64_t max_positions, Batch* train, Batch* validation) {
  ASSIGN_OR_RETURN(std::vector<TextExample> examples, ReadTextExamples(config.data_path, config.text));
  std::filesystem::path vocab = config.vocab;
  if (vocab.empty()) vocab = config.model.pretrained() / "vocab.txt";
  ASSIGN_OR_RETURN(WordPieceTokenizer tokenizer, WordPieceTokenizer::FromVocabFile(vocab));
  std::vector<double> labels;
  for (const TextExample& example : examples) labels.push_back(static_cast<double>(example.label));
  const Split split = SplitRows(labels, true, config.validation_fraction, config.split_seed);
  const int64_t max_length = std::min(config.max_length, max_positions);
  auto encode = [&](const std::vector<int64_t>& rows) {
    std::vector<std::string> texts, pairs;
    std::vector<int64_t> y;
    for (int64_t row : rows) {
      texts.push_back(examples[row].text);
      pairs.push_back(examples[row].text_pair);
      y.push_back(examples[row].label);
    }
    Batch batch = tokenizer.EncodeBatch(texts, pairs, max_length);
    batch.labels = torch::tensor(y, torch::kInt64);
    return batch;
  };
  *train = encode(split.train);
  if (!split.validation.empty()) *validation = encode(split.validation);
  return absl::OkStatus();
}

void ReadPrivacy(config::MapReader& reader, PrivacyConfig* privacy) {
  reader.Optional("noise_multiplier", &privacy->noise_multiplier, 0.0, 1e6);
  reader.Optional("target_epsilon", &privacy->target_epsilon, 0.0, 1e6);
  reader.Optional("max_grad_norm", &privacy->max_grad_norm, 0.0, 1e12);
  reader.Optional("delta", &privacy->delta, 0.0, 1.0);
  reader.Optional("sampling_rate", &privacy->sampling_rate, 0.0, 1.0);
  reader.Optional("expected_batch_size", &privacy->expected_batch_size, 0.0, 1e12);
  reader.Optional("steps", &privacy->steps, 0, INT64_MAX);
  if (reader.Has("test_seed")) {
    int64_t seed = 0;
    reader.Optional("test_seed", &seed, 0, INT64_MAX);
    privacy->seed = static_cast<uint64_t>(seed);
  }
}

// Resolves q, steps and σ for `examples` training rows, and configures the trainer for DP-SGD.
absl::StatusOr<DpSgdOptions> ResolvePrivacy(const TrainConfig& config, int64_t examples, std::ostream& out) {
  const PrivacyConfig& privacy = *config.privacy;
  const double n = static_cast<double>(examples);
  double q = privacy.sampling_rate;
  if (q == 0) {
    const double expected = privacy.expected_batch_size > 0 ? privacy.expected_batch_size
                                                            : static_cast<double>(config.trainer.batch_size());
    q = expected / n;
  }
  if (!(q > 0 && q <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("privacy: sampling rate ", q, " for ", examples,
                                                   " training examples is not in (0, 1]"));
  }
  const int64_t steps = privacy.steps > 0 ? privacy.steps
                                          : config.trainer.epochs() * std::max<int64_t>(1, std::llround(1.0 / q));
  double sigma = privacy.noise_multiplier;
  if (privacy.target_epsilon > 0) {
    ASSIGN_OR_RETURN(dp::NoiseCalibration calibration,
                     dp::CalibrateNoiseMultiplier(privacy.target_epsilon, privacy.delta, q, steps));
    sigma = calibration.noise_multiplier;
    out << absl::StrFormat("privacy: noise multiplier %.4f calibrated for epsilon %g at delta %g over %d steps\n", sigma,
                           privacy.target_epsilon, privacy.delta, steps);
  }
  if (privacy.delta >= 1.0 / n) {
    out << absl::StrFormat("privacy: warning: delta %g is not below 1/%d (training examples); such a delta allows "
                           "releasing a record outright\n",
                           privacy.delta, examples);
  }
  out << absl::StrFormat("privacy: DP-SGD with Poisson sampling q = %.5f (expected batch %.1f), noise multiplier %.4f, "
                         "per-example clip %g, %d steps\n",
                         q, q * n, sigma, privacy.max_grad_norm, steps)
      << std::flush;
  if (privacy.seed) out << "privacy: warning: privacy.test_seed is set: sampling and noise are predictable (tests only)\n";
  return DpSgdOptions().noise_multiplier(sigma).max_grad_norm(privacy.max_grad_norm).sampling_rate(q).steps(steps).seed(
      privacy.seed);
}

}  // namespace

absl::Status PrivacyConfig::Validate() const {
  if ((noise_multiplier > 0) == (target_epsilon > 0)) {
    return absl::InvalidArgumentError("privacy: set exactly one of noise_multiplier and target_epsilon (> 0)");
  }
  if (!(max_grad_norm > 0)) return absl::InvalidArgumentError("privacy.max_grad_norm must be > 0");
  if (!(delta > 0 && delta < 1)) return absl::InvalidArgumentError("privacy.delta must be in (0, 1)");
  if (sampling_rate > 0 && expected_batch_size > 0) {
    return absl::InvalidArgumentError("privacy: set at most one of sampling_rate and expected_batch_size");
  }
  return absl::OkStatus();
}

absl::Status TrainConfig::Validate() const {
  RETURN_IF_ERROR(model.Validate());
  RETURN_IF_ERROR(trainer.Validate());
  if (privacy) RETURN_IF_ERROR(privacy->Validate());
  if (validation_fraction < 0 || validation_fraction >= 1) {
    return absl::InvalidArgumentError("data.validation_fraction must be in [0, 1)");
  }
  if ((data_kind == DataKind::kTabular) != (model.kind() == ModelKind::kTabularTransformer)) {
    return absl::InvalidArgumentError("data.kind tabular goes with a tabular_transformer, text with a text_classifier");
  }
  if (data_kind == DataKind::kText) {
    RETURN_IF_ERROR(text.Validate());
    if (vocab.empty() && model.pretrained().empty()) {
      return absl::InvalidArgumentError("data.vocab is required unless the model is pretrained");
    }
    if (static_cast<int64_t>(text.classes.size()) != model.text().num_classes() && model.pretrained().empty()) {
      return absl::InvalidArgumentError(absl::StrCat("data lists ", text.classes.size(), " classes, the model has ",
                                                     model.text().num_classes()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<TrainConfig> LoadTrainConfig(const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(config::YamlDocument doc, config::YamlDocument::Load(path));
  TrainConfig config;
  config.source = path;
  {
    config::MapReader root = doc.Root();
    config::MapReader train = root.Map("train");
    train.RequiredPath("model", &config.model_config);
    {
      config::MapReader data = train.Map("data");
      std::string kind = "tabular";
      data.OptionalEnum("kind", &kind, {"tabular", "text"});
      config.data_kind = kind == "text" ? DataKind::kText : DataKind::kTabular;
      data.RequiredPath("path", &config.data_path);
      data.Optional("validation_fraction", &config.validation_fraction, 0.0, 0.99);
      int64_t seed = 0;
      data.Optional("split_seed", &seed, 0, INT64_MAX);
      config.split_seed = static_cast<uint64_t>(seed);
      if (config.data_kind == DataKind::kTabular) {
        data.RequiredPath("schema", &config.schema_path);
      } else {
        data.OptionalPath("vocab", &config.vocab);
        data.Optional("max_length", &config.max_length, 3, 1 << 20);
        data.Optional("text_column", &config.text.text_column);
        data.Optional("text_pair_column", &config.text.text_pair_column);
        data.Optional("label_column", &config.text.label_column);
        data.Optional("classes", &config.text.classes);
      }
    }
    if (train.Has("trainer")) {
      config::MapReader trainer = train.Map("trainer");
      ReadTrainerOptions(trainer, &config.trainer);
    }
    if (train.Has("privacy")) {
      config::MapReader privacy = train.Map("privacy");
      ReadPrivacy(privacy, &config.privacy.emplace());
    }
    train.OptionalPath("output", &config.output);
  }
  RETURN_IF_ERROR(doc.Finish());
  ASSIGN_OR_RETURN(config.model, LoadModelOptions(config.model_config));
  if (config.data_kind == DataKind::kTabular && config.model.kind() == ModelKind::kTabularTransformer) {
    ASSIGN_OR_RETURN(config.schema, LoadTabularSchema(config.schema_path));
    config.schema.ConfigureModel(&config.model.tabular());
    if (!config.schema.regression && !config.schema.positive_class.empty()) {
      for (size_t i = 0; i < config.schema.classes.size(); ++i) {
        if (config.schema.classes[i] == config.schema.positive_class) config.trainer.positive_class(static_cast<int64_t>(i));
      }
    }
  }
  if (config.data_kind == DataKind::kText && config.model.kind() == ModelKind::kTextClassifier) {
    config.model.text().num_classes(static_cast<int64_t>(config.text.classes.size()));
  }
  RETURN_IF_ERROR(Prefixed(config.Validate(), path.string()));
  return config;
}

absl::StatusOr<CentralTrainingResult> RunCentralTraining(const std::filesystem::path& config_path, std::ostream& out,
                                                         parallel::Collective* collective) {
  ASSIGN_OR_RETURN(TrainConfig config, LoadTrainConfig(config_path));
  Batch train, validation;
  std::shared_ptr<ModelImpl> model;
  try {
    if (!config.model.pretrained().empty()) {
      ASSIGN_OR_RETURN(model, ImportBert(config.model, config.trainer.seed()));
    } else {
      ASSIGN_OR_RETURN(model, BuildModel(config.model, config.trainer.seed()));
    }
    if (config.data_kind == DataKind::kTabular) {
      RETURN_IF_ERROR(LoadTabular(config, &train, &validation));
    } else {
      RETURN_IF_ERROR(LoadText(config, model->options().text().max_positions(), &train, &validation));
    }
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("preparing training: ", e.what_without_backtrace()));
  }
  ASSIGN_OR_RETURN(ModelSpec spec, BuildModelSpec(model->options()));
  CentralTrainingResult result;
  result.train_examples = train.size();
  result.validation_examples = validation.size();
  result.parameters = spec.NumParameters();
  result.trainable_parameters = spec.NumTrainable();
  ASSIGN_OR_RETURN(std::unique_ptr<Trainer> trainer, Trainer::Create(model, config.trainer, &out));
  trainer->set_collective(collective);
  RETURN_IF_ERROR(trainer->SyncModel());
  const bool leader = collective == nullptr || collective->rank() == 0;
  const int ranks = collective == nullptr ? 1 : collective->size();
  out << absl::StrFormat("training %s (%d parameters, %d trainable: %s) on %s: %d train / %d validation rows, "
                         "%d threads, %s\n",
                         ModelKindName(config.model.kind()), result.parameters, result.trainable_parameters,
                         TrainableName(config.model.trainable()), config.data_path.string(), result.train_examples,
                         result.validation_examples, at::get_num_threads(), trainer->device().str())
      << std::flush;
  if (ranks > 1) {
    out << absl::StrFormat("data-parallel over %d ranks (%s): each trains on 1/%d of every batch\n", ranks,
                           std::string(collective->backend()), ranks)
        << std::flush;
  }
  if (config.privacy) {
    ASSIGN_OR_RETURN(DpSgdOptions dp_sgd, ResolvePrivacy(config, result.train_examples, out));
    RETURN_IF_ERROR(trainer->EnableDpSgd(dp_sgd));
  }
  ASSIGN_OR_RETURN(result.train, trainer->Fit(train, validation));
  out << absl::StrFormat("done: %d steps in %.1f s; validation %s\n", result.train.steps, result.train.seconds,
                         result.train.validation.ToString());
  if (result.train.dp_sgd) {
    // What was released is the trained model: account the steps actually taken.
    const DpSgdSummary& dp = *result.train.dp_sgd;
    ASSIGN_OR_RETURN(result.privacy, dp::ComputeEpsilon(dp.sampling_rate, dp.noise_multiplier, dp.steps,
                                                        config.privacy->delta));
    out << absl::StrFormat(
        "privacy: epsilon %.4f at delta %g (RDP accountant, Poisson-subsampled Gaussian: q %.5f, sigma %.4f, %d steps; "
        "default order grid, optimal order %g); %.1f%% of sampled examples clipped, %d empty batches\n",
        result.privacy->epsilon, result.privacy->delta, dp.sampling_rate, dp.noise_multiplier, dp.steps,
        result.privacy->optimal_order, 100.0 * dp.clipped_fraction, dp.empty_batches);
  }
  if (!config.output.empty() && leader) {
    RETURN_IF_ERROR(SaveModel(*model, config.output, {{"fedattn.train_config", config_path.string()}}));
    out << "saved " << config.output.string() << "\n";
  }
  return result;
}

void EnsurePassiveOpenMpWait() {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  std::ifstream cmdline("/proc/self/cmdline", std::ios::binary);
  std::stringstream buffer;
  buffer << cmdline.rdbuf();
  std::vector<std::string> args;
  std::string arg;
  for (char c : buffer.str()) {
    if (c == '\0') {
      args.push_back(std::move(arg));
      arg.clear();
    } else {
      arg += c;
    }
  }
  if (args.empty()) return;
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::setenv("OMP_WAIT_POLICY", "passive", 1);
  ::execv("/proc/self/exe", argv.data());  // returns only on failure: carry on spinning
}

}  // namespace fedattn::models
