#include "fedattn/models/job_spec.h"

#include <algorithm>
#include <functional>
#include <initializer_list>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "fedattn/common/files.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/config/yaml_reader.h"
#include "fedattn/dp/calibration.h"
#include "fedattn/secagg/config.h"
#include "yaml-cpp/yaml.h"

namespace fedattn::models {
namespace {

// A strategy hyper-parameter: its default, its valid range and the strategies that take it.
struct StrategyParam {
  const char* key;
  double default_value;
  std::function<bool(double)> valid;
  const char* range;  // how `valid` reads in a message
  std::vector<std::string> strategies;
};

const std::vector<StrategyParam>& StrategyParams() {
  static const auto* params = new std::vector<StrategyParam>{
      {"proximal_mu", 0.01, [](double v) { return v >= 0; }, ">= 0", {"fedprox"}},
      {"server_lr", 0.1, [](double v) { return v > 0; }, "> 0", {"fedadam", "fedyogi", "fedadagrad"}},
      {"beta1", 0.9, [](double v) { return v >= 0 && v < 1; }, "in [0, 1)", {"fedadam", "fedyogi", "fedadagrad"}},
      {"beta2", 0.99, [](double v) { return v >= 0 && v < 1; }, "in [0, 1)", {"fedadam", "fedyogi"}},
      {"tau", 1e-3, [](double v) { return v > 0; }, "> 0", {"fedadam", "fedyogi", "fedadagrad"}},
      {"trim_fraction", 0.1, [](double v) { return v >= 0 && v < 0.5; }, "in [0, 0.5)", {"trimmed_mean"}},
  };
  return *params;
}

bool Contains(const std::vector<std::string>& values, absl::string_view value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

// Reads an optional number that must satisfy `valid`; the message says what `range` allows.
void ReadChecked(config::MapReader& reader, absl::string_view key, double* out,
                 const std::function<bool(double)>& valid, absl::string_view range) {
  if (!reader.Has(key)) {
    reader.Optional(key, out);  // marks the key as read
    return;
  }
  double value = *out;
  reader.Required(key, &value);  // a non-number is reported here and leaves `value` valid
  if (!valid(value)) {
    reader.Error(key, absl::StrCat("must be ", range, ", got ", value));
    return;
  }
  *out = value;
}

void ReadPositive(config::MapReader& reader, absl::string_view key, double* out) {
  ReadChecked(reader, key, out, [](double v) { return v > 0; }, "> 0");
}

// Reports `key` as misplaced (with why) and marks it read, so it is not also an unknown key.
void Misplaced(config::MapReader& reader, absl::string_view key, absl::string_view why) {
  if (!reader.Has(key)) return;
  reader.Error(key, why);
  std::string ignored;
  reader.Optional(key, &ignored);
}
void MisplacedList(config::MapReader& reader, absl::string_view key, absl::string_view why) {
  if (!reader.Has(key)) return;
  reader.Error(key, why);
  std::vector<std::string> ignored;
  reader.Optional(key, &ignored);
}

bool ValidJobName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
  });
}

// The node at root[k0][k1]..., without inserting anything; an undefined node when absent.
YAML::Node NodeAt(const YAML::Node& root, std::initializer_list<const char*> keys) {
  YAML::Node node = root;
  for (const char* key : keys) {
    if (!node.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    const YAML::Node& const_node = node;
    YAML::Node child = const_node[key];  // a const lookup inserts nothing
    if (!child.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
    node.reset(child);
  }
  return node;
}

absl::StatusOr<YAML::Node> LoadYamlNode(absl::string_view text, const std::string& source) {
  // YamlDocument::Parse gives the house error format for text that is not YAML.
  RETURN_IF_ERROR(config::YamlDocument::Parse(text, source).status());
  try {
    return YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not valid YAML: ", e.msg));
  }
}

// Files a job file referenced, already loaded and validated under their own names.
struct Preloaded {
  const ModelOptions* model = nullptr;   // job.model was a path
  const TabularSchema* schema = nullptr;  // job.data.schema was a path
};

// What the job text says about a key that may be a path (scalar) or an inline mapping.
struct Shape {
  bool model_is_path = false;
  bool schema_is_path = false;
};

constexpr absl::string_view kInlineHint =
    "a submitted job is self-contained: give the mapping here, or submit the operator's file with "
    "`fedattn job submit`, which inlines referenced files";

void ReadModel(config::MapReader& job, const Preloaded& pre, const Shape& shape, JobSpec* spec) {
  if (pre.model != nullptr) {
    std::string ignored;
    job.Optional("model", &ignored);
    spec->model = *pre.model;
    return;
  }
  if (shape.model_is_path) {
    Misplaced(job, "model", absl::StrCat("is a path; ", kInlineHint));
    return;
  }
  config::MapReader model = job.Map("model");
  ReadModelOptions(model, &spec->model);
  if (!spec->model.pretrained().empty() && !spec->model.pretrained().is_absolute()) {
    model.Error("pretrained", "must be an absolute path in a job (each site reads it on its own machine)");
  }
}

void ReadData(config::MapReader& data, const Preloaded& pre, const Shape& shape, JobData* out) {
  std::string kind = "tabular";
  data.OptionalEnum("kind", &kind, {"tabular", "text"});
  out->kind = kind == "text" ? DataKind::kText : DataKind::kTabular;
  ReadChecked(data, "validation_fraction", &out->validation_fraction,
              [](double v) { return v >= 0 && v < 1; }, "in [0, 1)");
  if (out->kind == DataKind::kTabular) {
    if (pre.schema != nullptr) {
      std::string ignored;
      data.Optional("schema", &ignored);
      out->schema = *pre.schema;
    } else if (shape.schema_is_path) {
      Misplaced(data, "schema", absl::StrCat("is a path; ", kInlineHint));
    } else {
      config::MapReader schema = data.Map("schema");
      ReadTabularSchema(schema, &out->schema);
      // Missing parts are reported by the reader; Validate() checks what was read.
      if (schema.Has("label") && schema.Has("features")) {
        if (absl::Status valid = out->schema.Validate(); !valid.ok()) data.Error("schema", valid.message());
      }
    }
    for (const char* key : {"text_column", "text_pair_column", "label_column", "max_length", "vocab"}) {
      Misplaced(data, key, "only for data.kind: text");
    }
    MisplacedList(data, "classes", "only for data.kind: text (a tabular job's classes are in its schema)");
    return;
  }
  if (data.Has("schema")) {
    data.Error("schema", "only for data.kind: tabular");
    data.Map("schema");  // marks it read
  }
  data.Optional("text_column", &out->text.text_column);
  data.Optional("text_pair_column", &out->text.text_pair_column);
  data.Optional("label_column", &out->text.label_column);
  data.Optional("classes", &out->text.classes);
  data.Optional("max_length", &out->max_length, 3, 1 << 20);
  data.OptionalPath("vocab", &out->vocab);
  if (out->text.classes.size() < 2) data.Error("classes", "list at least 2 classes");
  if (!out->vocab.empty() && !out->vocab.is_absolute()) {
    data.Error("vocab", "must be an absolute path in a job (each site reads it on its own machine)");
  }
}

void ReadStrategy(config::MapReader& strategy, JobStrategy* out) {
  strategy.OptionalEnum("name", &out->name, AllStrategyNames());
  for (const StrategyParam& param : StrategyParams()) {
    if (!Contains(param.strategies, out->name)) {
      if (strategy.Has(param.key)) {
        double ignored = 0;
        strategy.Optional(param.key, &ignored);
        strategy.Error(param.key, absl::StrCat("only for strategy ", absl::StrJoin(param.strategies, ", "),
                                               " (this job uses ", out->name, ")"));
      }
      continue;
    }
    double value = param.default_value;
    ReadChecked(strategy, param.key, &value, param.valid, param.range);
    out->params[param.key] = value;
  }
}

void ReadLocal(config::MapReader& local, JobLocalTraining* out) {
  local.Optional("epochs", &out->epochs, 1, 100000);
  local.Optional("steps", &out->steps, 1, int64_t{1} << 40);
  if (local.Has("epochs") && local.Has("steps")) {
    local.Error("steps", "give local.epochs or local.steps, not both");
  } else if (!local.Has("epochs") && !local.Has("steps")) {
    local.Error("", "set local.epochs or local.steps (exactly one)");
  }
  local.Optional("batch_size", &out->batch_size, 1, 1 << 20);
  ReadChecked(local, "lr", &out->lr, [](double v) { return v > 0 && v <= 10; }, "in (0, 10]");
  ReadChecked(local, "weight_decay", &out->weight_decay, [](double v) { return v >= 0 && v <= 10; },
              "in [0, 10]");
  local.Optional("warmup_steps", &out->warmup_steps, 0, int64_t{1} << 40);
  local.OptionalEnum("decay", &out->decay, {"constant", "linear", "cosine"});
  local.Optional("threads", &out->threads, 0, 4096);
  local.OptionalEnum("device", &out->device, {"cpu", "cuda", "auto"});
}

void ReadPrivacy(config::MapReader& privacy, JobSpec* spec) {
  if (privacy.Has("sample_level")) {
    config::MapReader dp = privacy.Map("sample_level");
    SampleLevelDp& out = spec->sample_dp;
    out.enabled = true;  // a present section is on unless it says otherwise
    dp.Optional("enabled", &out.enabled);
    ReadPositive(dp, "noise_multiplier", &out.noise_multiplier);
    ReadPositive(dp, "target_epsilon", &out.target_epsilon);
    ReadPositive(dp, "max_grad_norm", &out.max_grad_norm);
    ReadChecked(dp, "delta", &out.delta, [](double v) { return v > 0 && v < 1; }, "in (0, 1)");
    if (out.enabled) {
      if (dp.Has("noise_multiplier") && dp.Has("target_epsilon")) {
        dp.Error("target_epsilon", "give noise_multiplier or target_epsilon, not both");
      } else if (!dp.Has("noise_multiplier") && !dp.Has("target_epsilon")) {
        dp.Error("", "set noise_multiplier (sigma) or target_epsilon");
      }
    }
    if (!dp.Has("noise_multiplier")) out.noise_multiplier = 0;
    if (!dp.Has("target_epsilon")) out.target_epsilon = 0;
  }
  if (privacy.Has("client_level")) {
    config::MapReader dp = privacy.Map("client_level");
    ClientLevelDp& out = spec->client_dp;
    out.enabled = true;
    dp.Optional("enabled", &out.enabled);
    ReadPositive(dp, "clip_norm", &out.clip_norm);
    ReadChecked(dp, "noise_multiplier", &out.noise_multiplier, [](double v) { return v >= 0; }, ">= 0");
  }
}

void ReadSecAgg(config::MapReader& secagg, JobSecAgg* out) {
  secagg.Optional("enabled", &out->enabled);
  secagg.Optional("degree", &out->degree, 0, 100000);
  secagg.Optional("threshold", &out->threshold, 0, 100000);
  ReadChecked(secagg, "max_dropout_fraction", &out->max_dropout_fraction,
              [](double v) { return v >= 0 && v < 0.5; }, "in [0, 0.5)");
  ReadPositive(secagg, "coordinate_clip", &out->coordinate_clip);
  // With k given, t must be a strict majority of the k + 1 share holders and at most k + 1
  // (secagg/config.h); with k = 0 the graph, and so the check, waits for the round's sites.
  if (out->degree > 0 && out->threshold > 0) {
    if (out->threshold > out->degree + 1) {
      secagg.Error("threshold", absl::StrCat("must be at most degree + 1 = ", out->degree + 1));
    } else if (out->threshold <= (out->degree + 1) / 2) {
      secagg.Error("threshold", absl::StrCat("must be a strict majority of degree + 1 = ", out->degree + 1,
                                             " share holders (> ", (out->degree + 1) / 2, ")"));
    }
  }
}

void ReadJob(config::MapReader& job, const Preloaded& pre, const Shape& shape, JobSpec* spec) {
  job.Required("name", &spec->name);
  if (!spec->name.empty() && !ValidJobName(spec->name)) {
    job.Error("name", "use 1 to 64 of a-z, 0-9, '-', '_', '.'");
  }
  int64_t seed = 0;
  job.Optional("seed", &seed, 0, INT64_MAX);
  spec->seed = static_cast<uint64_t>(seed);
  ReadModel(job, pre, shape, spec);
  config::MapReader data = job.Map("data");
  ReadData(data, pre, shape, &spec->data);
  job.Required("rounds", &spec->rounds, 1, 1000000);
  config::MapReader sites = job.Map("sites", /*required=*/false);
  ReadChecked(sites, "fraction", &spec->sites.fraction, [](double v) { return v > 0 && v <= 1; }, "in (0, 1]");
  sites.Optional("min_sites", &spec->sites.min_sites, 1, 100000);
  config::MapReader strategy = job.Map("strategy", /*required=*/false);
  ReadStrategy(strategy, &spec->strategy);
  config::MapReader local = job.Map("local");
  ReadLocal(local, &spec->local);
  config::MapReader privacy = job.Map("privacy", /*required=*/false);
  ReadPrivacy(privacy, spec);
  config::MapReader secagg = job.Map("secagg", /*required=*/false);
  ReadSecAgg(secagg, &spec->secagg);
  config::MapReader deadlines = job.Map("deadlines", /*required=*/false);
  ReadChecked(deadlines, "train_s", &spec->train_deadline_s, [](double v) { return v > 0 && v <= 7 * 86400; },
              "in (0, 604800]");
  ReadChecked(deadlines, "stage_s", &spec->stage_deadline_s, [](double v) { return v > 0 && v <= 7 * 86400; },
              "in (0, 604800]");
  config::MapReader evaluation = job.Map("evaluation", /*required=*/false);
  evaluation.Optional("every", &spec->evaluate_every, 0, 1000000);
  config::MapReader checkpoint = job.Map("checkpoint", /*required=*/false);
  checkpoint.Optional("every", &spec->checkpoint_every, 0, 1000000);

  // Rules across sections.
  ModelOptions& model = spec->model;
  const bool tabular_model = model.kind() == ModelKind::kTabularTransformer;
  if (tabular_model != (spec->data.kind == DataKind::kTabular)) {
    data.Error("kind", absl::StrCat("a ", ModelKindName(model.kind()), " model needs data.kind: ",
                                    tabular_model ? "tabular" : "text"));
  } else if (tabular_model && !spec->data.schema.features.empty()) {
    if (model.tabular().regression() != spec->data.schema.regression) {
      job.Error("model", absl::StrCat("task is ", model.tabular().regression() ? "regression" : "classification",
                                      " but the data schema's label is for ",
                                      spec->data.schema.regression ? "regression" : "classification"));
    }
    spec->data.schema.ConfigureModel(&model.tabular());
  } else if (!tabular_model) {
    if (spec->data.text.classes.size() >= 2) {
      model.text().num_classes(static_cast<int64_t>(spec->data.text.classes.size()));
    }
    if (model.pretrained().empty() && spec->data.vocab.empty()) {
      data.Error("vocab", "required unless the model is pretrained (its vocab.txt is used)");
    }
  }
  if (absl::Status valid = model.Validate(); !valid.ok()) {
    job.Error("model", valid.message());
  } else if (tabular_model && !spec->data.schema.features.empty()) {
    if (absl::Status built = BuildModelSpec(model).status(); !built.ok()) job.Error("model", built.message());
  }
  if (spec->secagg.enabled) {
    if (IsRobustStrategy(spec->strategy.name)) {
      strategy.Error("name", absl::StrCat(spec->strategy.name,
                                          ": robust rules need every update; run them with secagg.enabled: false"));
    }
    if (spec->sites.min_sites < 2) {
      sites.Error("min_sites", "secure aggregation needs at least 2 sites a round; set min_sites >= 2 or "
                               "secagg.enabled: false");
    } else {
      // The smallest round the job accepts must pass the SecAgg safety check (threshold, and the
      // abort probability at max_dropout_fraction), or such a round would be refused at run time.
      secagg::SecAggConfig round;
      round.job_id = "job";
      round.vector_length = 1;
      for (int64_t i = 0; i < spec->sites.min_sites; ++i) round.sites.push_back(static_cast<secagg::SiteId>(i));
      round.degree = static_cast<uint32_t>(spec->secagg.degree);
      round.threshold = static_cast<uint32_t>(spec->secagg.threshold);
      round.max_dropout_fraction = spec->secagg.max_dropout_fraction;
      if (absl::Status safe = round.Resolved().status(); !safe.ok()) {
        secagg.Error("", absl::StrCat("not safe for a round of min_sites = ", spec->sites.min_sites,
                                      " sites (lower max_dropout_fraction or change degree/threshold): ",
                                      safe.message()));
      }
    }
  }
  if (spec->evaluate_every > 0 && spec->data.validation_fraction == 0) {
    evaluation.Error("every", "sites evaluate on their validation split: set data.validation_fraction > 0 or "
                              "evaluation.every: 0");
  }
}

absl::StatusOr<JobSpec> ParseJob(absl::string_view text, const std::string& source, const Preloaded& pre) {
  ASSIGN_OR_RETURN(YAML::Node root, LoadYamlNode(text, source));
  Shape shape;
  shape.model_is_path = NodeAt(root, {"job", "model"}).IsScalar();
  shape.schema_is_path = NodeAt(root, {"job", "data", "schema"}).IsScalar();
  ASSIGN_OR_RETURN(config::YamlDocument doc, config::YamlDocument::Parse(text, source));
  JobSpec spec;
  {
    config::MapReader top = doc.Root();
    config::MapReader job = top.Map("job");
    ReadJob(job, pre, shape, &spec);
  }
  RETURN_IF_ERROR(doc.Finish());
  return spec;
}

// The mapping under `key` of a referenced YAML file (its marks point into that file).
absl::StatusOr<YAML::Node> MappingOfFile(const std::filesystem::path& path, const char* key) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  ASSIGN_OR_RETURN(YAML::Node root, LoadYamlNode(text, path.string()));
  YAML::Node node = NodeAt(root, {key});
  if (!node.IsMap()) return absl::InvalidArgumentError(absl::StrCat(path.string(), ": no `", key, ":` mapping"));
  return node;
}

std::filesystem::path Against(const std::filesystem::path& directory, const std::string& text) {
  const std::filesystem::path path(text);
  return path.is_absolute() ? path : (directory / path).lexically_normal();
}

}  // namespace

const std::vector<std::string>& AllStrategyNames() {
  static const auto* names = new std::vector<std::string>{"fedavg", "fedprox", "fedadam", "fedyogi",
                                                          "fedadagrad", "median", "trimmed_mean"};
  return *names;
}

bool IsRobustStrategy(absl::string_view name) { return name == "median" || name == "trimmed_mean"; }

absl::StatusOr<JobSpec> ParseJobSpec(absl::string_view yaml_text, absl::string_view source_name) {
  return ParseJob(yaml_text, std::string(source_name), Preloaded());
}

absl::StatusOr<std::string> ResolveJobFile(const std::filesystem::path& path) {
  const std::string source = path.string();
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  ASSIGN_OR_RETURN(YAML::Node root, LoadYamlNode(text, source));
  const std::filesystem::path directory = path.has_parent_path() ? path.parent_path() : ".";

  // Referenced files are validated under their own names first, so a problem inside one names
  // that file and line; the job file is then validated with its own lines.
  Preloaded pre;
  std::optional<ModelOptions> model;
  std::optional<TabularSchema> schema;
  YAML::Node model_node, schema_node;
  if (const YAML::Node ref = NodeAt(root, {"job", "model"}); ref.IsScalar()) {
    const std::filesystem::path model_path = Against(directory, ref.Scalar());
    ASSIGN_OR_RETURN(model, LoadModelOptions(model_path));
    ASSIGN_OR_RETURN(model_node, MappingOfFile(model_path, "model"));
    if (const YAML::Node pretrained = NodeAt(model_node, {"pretrained"});
        pretrained.IsScalar() && !std::filesystem::path(pretrained.Scalar()).is_absolute()) {
      return absl::InvalidArgumentError(absl::StrCat(
          model_path.string(), ":", pretrained.Mark().line + 1,
          ": model.pretrained: must be an absolute path in a job (each site reads it on its own machine)"));
    }
    pre.model = &*model;
  }
  if (const YAML::Node ref = NodeAt(root, {"job", "data", "schema"}); ref.IsScalar()) {
    const std::filesystem::path schema_path = Against(directory, ref.Scalar());
    ASSIGN_OR_RETURN(schema, LoadTabularSchema(schema_path));
    ASSIGN_OR_RETURN(schema_node, MappingOfFile(schema_path, "schema"));
    pre.schema = &*schema;
  }
  RETURN_IF_ERROR(ParseJob(text, source, pre).status());

  if (pre.model != nullptr) root["job"]["model"] = model_node;
  if (pre.schema != nullptr) root["job"]["data"]["schema"] = schema_node;
  YAML::Emitter out;
  out.SetIndent(2);
  out << root;
  if (!out.good()) return absl::InternalError(absl::StrCat(source, ": cannot emit the resolved job: ", out.GetLastError()));
  std::string resolved = std::string(out.c_str()) + "\n";
  // The text must mean what the file meant; a difference here is a bug, not the operator's.
  if (absl::Status again = ParseJobSpec(resolved, absl::StrCat(source, " (resolved)")).status(); !again.ok()) {
    return absl::InternalError(absl::StrCat("the resolved job does not parse: ", again.message()));
  }
  return resolved;
}

absl::StatusOr<SampleDpPlan> PlanSampleDp(const JobSpec& job, int64_t train_examples) {
  if (!job.sample_dp.enabled) return absl::InvalidArgumentError(absl::StrCat("job '", job.name, "' has no sample-level DP"));
  if (train_examples < 1) {
    return absl::InvalidArgumentError(absl::StrCat("a site needs at least one training example, got ", train_examples));
  }
  SampleDpPlan plan;
  plan.sampling_rate = std::min(1.0, static_cast<double>(job.local.batch_size) / static_cast<double>(train_examples));
  plan.steps_per_round = job.local.steps > 0
                             ? job.local.steps
                             : job.local.epochs * ((train_examples + job.local.batch_size - 1) / job.local.batch_size);
  plan.total_steps = job.rounds * plan.steps_per_round;
  if (job.sample_dp.target_epsilon > 0) {
    ASSIGN_OR_RETURN(dp::NoiseCalibration calibration,
                     dp::CalibrateNoiseMultiplier(job.sample_dp.target_epsilon, job.sample_dp.delta,
                                                  plan.sampling_rate, plan.total_steps));
    plan.noise_multiplier = calibration.noise_multiplier;
  } else {
    plan.noise_multiplier = job.sample_dp.noise_multiplier;
  }
  return plan;
}

std::string DescribePrivacy(const JobSpec& job) {
  std::string out;
  const SampleLevelDp& s = job.sample_dp;
  if (!s.enabled) {
    out = "no sample-level DP";
  } else if (s.target_epsilon > 0) {
    out = absl::StrFormat("DP-SGD target epsilon=%g C=%g delta=%g", s.target_epsilon, s.max_grad_norm, s.delta);
  } else {
    out = absl::StrFormat("DP-SGD sigma=%g C=%g delta=%g", s.noise_multiplier, s.max_grad_norm, s.delta);
  }
  const ClientLevelDp& c = job.client_dp;
  absl::StrAppend(&out, c.enabled ? absl::StrFormat("; client DP S=%g z=%g", c.clip_norm, c.noise_multiplier)
                                  : std::string("; no client DP"));
  absl::StrAppend(&out, job.secagg.enabled ? "; SecAgg on" : "; SecAgg off");
  return out;
}

}  // namespace fedattn::models
