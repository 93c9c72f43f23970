#include "fedattn/models/job_spec.h"

#include <fstream>

#include "absl/strings/str_replace.h"
#include "fedattn/dp/accountant.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/temp_dir.h"

namespace fedattn::models {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::filesystem::path kSource = FEDATTN_SOURCE_DIR;

// A small valid job with everything inline; `local:` comes last so a case can append keys to it.
const char kBase[] =
    "job:\n"                                                                          // 1
    "  name: t\n"                                                                     // 2
    "  model: {kind: tabular_transformer, d_model: 8, num_layers: 1, num_heads: 2, ffn_dim: 16}\n"  // 3
    "  data:\n"                                                                       // 4
    "    schema:\n"                                                                   // 5
    "      label: {column: y, classes: [a, b]}\n"                                     // 6
    "      features: [{name: x}, {name: c, kind: categorical, categories: [p, q, r]}]\n"  // 7
    "  rounds: 2\n"                                                                   // 8
    "  local:\n"                                                                      // 9
    "    epochs: 1\n";                                                                // 10

std::string Message(const absl::StatusOr<JobSpec>& job) { return std::string(job.status().message()); }

absl::StatusOr<JobSpec> Parse(const std::string& text) { return ParseJobSpec(text, "t.yaml"); }

TEST(JobSpecTest, EveryJobConfigResolvesAndParses) {
  int seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kSource / "configs/jobs")) {
    if (entry.path().extension() != ".yaml") continue;
    ++seen;
    SCOPED_TRACE(entry.path().string());
    auto text = ResolveJobFile(entry.path());
    ASSERT_TRUE(text.ok()) << text.status();
    auto job = ParseJobSpec(*text, entry.path().filename().string());
    ASSERT_TRUE(job.ok()) << job.status();
    EXPECT_EQ(job->model.kind(), ModelKind::kTabularTransformer);
    auto spec = BuildModelSpec(job->model);
    ASSERT_TRUE(spec.ok()) << spec.status();
    EXPECT_GT(spec->NumTrainable(), 0);
  }
  EXPECT_GE(seen, 3);
}

TEST(JobSpecTest, MainJobMeansWhatItSays) {
  auto text = ResolveJobFile(kSource / "configs/jobs/wdbc_dp.yaml");
  ASSERT_TRUE(text.ok()) << text.status();
  auto job = ParseJobSpec(*text, "wdbc_dp");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->name, "wdbc-dp");
  EXPECT_EQ(job->rounds, 10);
  EXPECT_EQ(job->sites.min_sites, 3);
  EXPECT_EQ(job->strategy.name, "fedavg");
  EXPECT_TRUE(job->strategy.params.empty());
  EXPECT_EQ(job->local.epochs, 2);
  EXPECT_EQ(job->local.batch_size, 64);
  EXPECT_EQ(job->local.steps, 0);
  EXPECT_TRUE(job->sample_dp.enabled);
  EXPECT_EQ(job->sample_dp.noise_multiplier, 0.0);
  EXPECT_EQ(job->sample_dp.target_epsilon, 6.0);
  EXPECT_EQ(job->sample_dp.delta, 1e-5);
  EXPECT_FALSE(job->client_dp.enabled);
  EXPECT_TRUE(job->secagg.enabled);
  // The schema sized the model: 30 numeric features, 2 classes (docs/models.md: 19,170 parameters).
  EXPECT_EQ(job->data.schema.features.size(), 30u);
  EXPECT_EQ(job->data.schema.positive_class, "M");
  EXPECT_EQ(job->model.tabular().num_numeric(), 30);
  EXPECT_EQ(BuildModelSpec(job->model)->NumParameters(), 19170);
  EXPECT_EQ(DescribePrivacy(*job), "DP-SGD target epsilon=6 C=1 delta=1e-05; no client DP; SecAgg on");
  // Each site calibrates sigma for the whole job at its own size (152 training rows: a third of
  // WDBC, 20 % held out).
  auto plan = PlanSampleDp(*job, 152);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_NEAR(plan->sampling_rate, 64.0 / 152.0, 1e-12);
  EXPECT_EQ(plan->total_steps, 60);  // 10 rounds x 2 epochs x ceil(152 / 64)
  EXPECT_NEAR(plan->noise_multiplier, 2.84, 0.01);  // fedattn privacy noise --target-epsilon 6 -q 0.421 -T 60

  auto plain = ParseJobSpec(*ResolveJobFile(kSource / "configs/jobs/wdbc_plain.yaml"), "plain");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(plain->sample_dp.enabled);
  EXPECT_FALSE(plain->secagg.enabled);
  EXPECT_EQ(DescribePrivacy(*plain), "no sample-level DP; no client DP; SecAgg off");

  auto exam = ParseJobSpec(*ResolveJobFile(kSource / "configs/jobs/exam_schools.yaml"), "exam");
  ASSERT_TRUE(exam.ok()) << exam.status();
  EXPECT_TRUE(exam->data.schema.regression);
  EXPECT_TRUE(exam->model.tabular().regression());
  EXPECT_EQ(exam->model.tabular().cardinalities(), (std::vector<int64_t>{3, 3, 3, 2, 2}));
  EXPECT_EQ(exam->strategy.name, "fedprox");
  EXPECT_EQ(exam->strategy.Get("proximal_mu"), 0.01);
  EXPECT_EQ(exam->checkpoint_every, 5);
  EXPECT_EQ(exam->sample_dp.noise_multiplier, 1.2);
}

TEST(JobSpecTest, ResolvedTextIsSelfContainedAndStable) {
  testing::TempDir dir;
  auto first = ResolveJobFile(kSource / "configs/jobs/wdbc_dp.yaml");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(*first, Not(HasSubstr(".yaml")));  // no file references left
  EXPECT_THAT(*first, HasSubstr("radius_mean"));
  // Resolving the resolved text (from anywhere: it names no file) gives the same text.
  std::ofstream(dir / "resolved.yaml") << *first;
  auto second = ResolveJobFile(dir / "resolved.yaml");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, *first);
  // And means the same job as the file it came from.
  auto a = ParseJobSpec(*first, "a");
  auto b = ParseJobSpec(*second, "b");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->model.tabular().encoder().d_model(), 32);
  EXPECT_EQ(a->model.tabular().encoder().d_model(), b->model.tabular().encoder().d_model());
  EXPECT_EQ(a->data.schema.classes, b->data.schema.classes);
  EXPECT_EQ(a->local.lr, 1e-2);
  EXPECT_EQ(a->secagg.max_dropout_fraction, b->secagg.max_dropout_fraction);
}

TEST(JobSpecTest, DefaultsOfAMinimalJob) {
  auto job = Parse(kBase);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->seed, 0u);
  EXPECT_EQ(job->data.kind, DataKind::kTabular);
  EXPECT_EQ(job->data.validation_fraction, 0.2);
  EXPECT_EQ(job->sites.fraction, 1.0);
  EXPECT_EQ(job->sites.min_sites, 2);
  EXPECT_EQ(job->strategy.name, "fedavg");
  EXPECT_EQ(job->local.batch_size, 32);
  EXPECT_EQ(job->local.decay, "constant");
  EXPECT_FALSE(job->sample_dp.enabled);
  EXPECT_FALSE(job->client_dp.enabled);
  EXPECT_TRUE(job->secagg.enabled);
  EXPECT_EQ(job->secagg.degree, 0);
  EXPECT_EQ(job->train_deadline_s, 600);
  EXPECT_EQ(job->stage_deadline_s, 60);
  EXPECT_EQ(job->evaluate_every, 1);
  EXPECT_EQ(job->checkpoint_every, 1);
  EXPECT_EQ(job->model.tabular().num_numeric(), 1);
  EXPECT_EQ(job->model.tabular().cardinalities(), std::vector<int64_t>{3});
}

TEST(JobSpecTest, StrategyParametersGetTheirDefaults) {
  auto adam = Parse(std::string(kBase) + "  strategy: {name: fedadam, beta2: 0.999}\n");
  ASSERT_TRUE(adam.ok()) << adam.status();
  EXPECT_EQ(adam->strategy.params,
            (std::map<std::string, double>{{"server_lr", 0.1}, {"beta1", 0.9}, {"beta2", 0.999}, {"tau", 1e-3}}));
  auto adagrad = Parse(std::string(kBase) + "  strategy: {name: fedadagrad}\n");
  ASSERT_TRUE(adagrad.ok()) << adagrad.status();
  EXPECT_FALSE(adagrad->strategy.Has("beta2"));
  auto trimmed = Parse(std::string(kBase) + "  strategy: {name: trimmed_mean, trim_fraction: 0.2}\n"
                                            "  secagg: {enabled: false}\n");
  ASSERT_TRUE(trimmed.ok()) << trimmed.status();
  EXPECT_EQ(trimmed->strategy.Get("trim_fraction"), 0.2);
  EXPECT_TRUE(IsRobustStrategy("median"));
  EXPECT_FALSE(IsRobustStrategy("fedavg"));
  EXPECT_EQ(AllStrategyNames().size(), 7u);
}

TEST(JobSpecTest, PrivacySections) {
  auto job = Parse(std::string(kBase) +
                   "  privacy:\n"
                   "    sample_level: {target_epsilon: 3, max_grad_norm: 0.5, delta: 1.0e-6}\n"
                   "    client_level: {clip_norm: 2, noise_multiplier: 0.5}\n");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_TRUE(job->sample_dp.enabled);  // a present section is on
  EXPECT_EQ(job->sample_dp.target_epsilon, 3);
  EXPECT_EQ(job->sample_dp.noise_multiplier, 0);
  EXPECT_EQ(job->sample_dp.max_grad_norm, 0.5);
  EXPECT_TRUE(job->client_dp.enabled);
  EXPECT_EQ(job->client_dp.clip_norm, 2);
  EXPECT_EQ(DescribePrivacy(*job), "DP-SGD target epsilon=3 C=0.5 delta=1e-06; client DP S=2 z=0.5; SecAgg on");
  auto off = Parse(std::string(kBase) + "  privacy:\n    sample_level: {enabled: false}\n");
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->sample_dp.enabled);
}

struct BadCase {
  const char* name;
  std::string yaml;
  const char* message;  // expected substring (file, line and key path)
};

std::string With(const std::string& suffix) { return std::string(kBase) + suffix; }
std::string Replace(absl::string_view from, absl::string_view to) {
  return absl::StrReplaceAll(kBase, {{from, to}});
}

class JobSpecRejects : public ::testing::TestWithParam<BadCase> {};

TEST_P(JobSpecRejects, NamingTheKey) {
  const BadCase& c = GetParam();
  auto job = Parse(c.yaml);
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(job), HasSubstr(c.message));
}

const char kModel[] = "  model: {kind: tabular_transformer, d_model: 8, num_layers: 1, num_heads: 2, ffn_dim: 16}\n";

INSTANTIATE_TEST_SUITE_P(
    Rules, JobSpecRejects,
    ::testing::Values(
        BadCase{"NotYaml", "job: [\n", "not valid YAML"},
        BadCase{"NoJob", "jobs: {}\n", "t.yaml:1: job: required section is missing"},
        BadCase{"UnknownKey", With("  colour: red\n"), "t.yaml:11: job.colour: unknown key"},
        BadCase{"UnknownNestedKey", With("    epoch: 2\n"), "t.yaml:11: job.local.epoch: unknown key"},
        BadCase{"NameMissing", Replace("  name: t\n", ""), "job.name: required key is missing"},
        BadCase{"NameCharacters", Replace("name: t", "name: Wdbc DP"),
                "t.yaml:2: job.name: use 1 to 64 of a-z, 0-9, '-', '_', '.'"},
        BadCase{"RoundsMissing", Replace("  rounds: 2\n", ""), "job.rounds: required key is missing"},
        BadCase{"RoundsZero", Replace("rounds: 2", "rounds: 0"), "t.yaml:8: job.rounds: must be between 1 and"},
        BadCase{"EpochsAndSteps", With("    steps: 10\n"),
                "t.yaml:11: job.local.steps: give local.epochs or local.steps, not both"},
        BadCase{"NeitherEpochsNorSteps", Replace("    epochs: 1\n", "    lr: 0.1\n"),
                "job.local: set local.epochs or local.steps (exactly one)"},
        BadCase{"LearningRate", With("    lr: 0\n"), "t.yaml:11: job.local.lr: must be in (0, 10], got 0"},
        BadCase{"Decay", With("    decay: step\n"), "job.local.decay: must be one of constant, linear, cosine"},
        BadCase{"UnknownStrategy", With("  strategy: {name: krum}\n"), "t.yaml:11: job.strategy.name: must be one of"},
        BadCase{"KeyOfAnotherStrategy", With("  strategy: {name: fedavg, proximal_mu: 0.1}\n"),
                "t.yaml:11: job.strategy.proximal_mu: only for strategy fedprox (this job uses fedavg)"},
        BadCase{"Beta2WithAdagrad", With("  strategy: {name: fedadagrad, beta2: 0.9}\n"),
                "job.strategy.beta2: only for strategy fedadam, fedyogi (this job uses fedadagrad)"},
        BadCase{"Beta1Range", With("  strategy: {name: fedadam, beta1: 1}\n"),
                "job.strategy.beta1: must be in [0, 1), got 1"},
        BadCase{"ServerLrRange", With("  strategy: {name: fedyogi, server_lr: 0}\n"),
                "job.strategy.server_lr: must be > 0, got 0"},
        BadCase{"TrimFraction", With("  strategy: {name: trimmed_mean, trim_fraction: 0.5}\n  secagg: {enabled: false}\n"),
                "job.strategy.trim_fraction: must be in [0, 0.5), got 0.5"},
        BadCase{"RobustWithSecAgg", With("  strategy: {name: median}\n"),
                "t.yaml:11: job.strategy.name: median: robust rules need every update; run them with "
                "secagg.enabled: false"},
        BadCase{"SecAggWithOneSite", With("  sites: {min_sites: 1}\n"),
                "t.yaml:11: job.sites.min_sites: secure aggregation needs at least 2 sites a round"},
        BadCase{"SecAggUnsafeForSmallestRound", With("  sites: {min_sites: 3}\n  secagg: {max_dropout_fraction: 0.1}\n"),
                "t.yaml:12: job.secagg: not safe for a round of min_sites = 3 sites"},
        BadCase{"ThresholdAboveDegree", With("  secagg: {degree: 4, threshold: 6}\n"),
                "job.secagg.threshold: must be at most degree + 1 = 5"},
        BadCase{"ThresholdMinority", With("  secagg: {degree: 4, threshold: 2}\n"),
                "job.secagg.threshold: must be a strict majority of degree + 1 = 5 share holders"},
        BadCase{"CoordinateClip", With("  secagg: {coordinate_clip: 0}\n"), "job.secagg.coordinate_clip: must be > 0"},
        BadCase{"DropoutFraction", With("  secagg: {max_dropout_fraction: 0.5}\n"),
                "job.secagg.max_dropout_fraction: must be in [0, 0.5)"},
        BadCase{"SitesFraction", With("  sites: {fraction: 0}\n"), "job.sites.fraction: must be in (0, 1], got 0"},
        BadCase{"SitesFractionAboveOne", With("  sites: {fraction: 1.5}\n"), "job.sites.fraction: must be in (0, 1]"},
        BadCase{"SigmaAndTarget",
                With("  privacy:\n    sample_level: {noise_multiplier: 1, target_epsilon: 3}\n"),
                "t.yaml:12: job.privacy.sample_level.target_epsilon: give noise_multiplier or target_epsilon, not both"},
        BadCase{"NeitherSigmaNorTarget", With("  privacy:\n    sample_level: {max_grad_norm: 1}\n"),
                "t.yaml:12: job.privacy.sample_level: set noise_multiplier (sigma) or target_epsilon"},
        BadCase{"Delta", With("  privacy:\n    sample_level: {noise_multiplier: 1, delta: 1}\n"),
                "job.privacy.sample_level.delta: must be in (0, 1), got 1"},
        BadCase{"ClipNorm", With("  privacy:\n    sample_level: {noise_multiplier: 1, max_grad_norm: 0}\n"),
                "job.privacy.sample_level.max_grad_norm: must be > 0, got 0"},
        BadCase{"NegativeSigma", With("  privacy:\n    sample_level: {noise_multiplier: -1}\n"),
                "job.privacy.sample_level.noise_multiplier: must be > 0, got -1"},
        BadCase{"ClientNoise", With("  privacy:\n    client_level: {noise_multiplier: -0.5}\n"),
                "job.privacy.client_level.noise_multiplier: must be >= 0, got -0.5"},
        BadCase{"ClientClip", With("  privacy:\n    client_level: {clip_norm: 0}\n"),
                "job.privacy.client_level.clip_norm: must be > 0"},
        BadCase{"UnknownPrivacyKey", With("  privacy:\n    site_level: {}\n"),
                "t.yaml:12: job.privacy.site_level: unknown key"},
        BadCase{"TrainDeadline", With("  deadlines: {train_s: 0}\n"), "job.deadlines.train_s: must be in (0, 604800]"},
        BadCase{"StageDeadline", With("  deadlines: {stage_s: -1}\n"), "job.deadlines.stage_s: must be in (0, 604800]"},
        BadCase{"EvaluateWithoutValidation", Replace("    schema:\n", "    validation_fraction: 0\n    schema:\n"),
                "job.evaluation.every: sites evaluate on their validation split"},
        BadCase{"ValidationFraction", Replace("    schema:\n", "    validation_fraction: 1\n    schema:\n"),
                "t.yaml:5: job.data.validation_fraction: must be in [0, 1), got 1"},
        BadCase{"ModelAsPath", Replace(kModel, "  model: ../models/ft_transformer_small.yaml\n"),
                "t.yaml:3: job.model: is a path; a submitted job is self-contained"},
        BadCase{"SchemaAsPath",
                Replace("    schema:\n      label: {column: y, classes: [a, b]}\n"
                        "      features: [{name: x}, {name: c, kind: categorical, categories: [p, q, r]}]\n",
                        "    schema: ../data/wdbc.schema.yaml\n"),
                "t.yaml:5: job.data.schema: is a path; a submitted job is self-contained"},
        BadCase{"SchemaMissing",
                Replace("    schema:\n      label: {column: y, classes: [a, b]}\n"
                        "      features: [{name: x}, {name: c, kind: categorical, categories: [p, q, r]}]\n",
                        "    kind: tabular\n"),
                "job.data.schema: required section is missing"},
        BadCase{"SchemaDuplicateColumn", Replace("[{name: x}, ", "[{name: x}, {name: x}, "),
                "t.yaml:6: job.data.schema: column 'x' is used twice"},
        BadCase{"SchemaUnknownKey", Replace("      label: {column: y", "      label: {colour: red, column: y"),
                "t.yaml:6: job.data.schema.label.colour: unknown key"},
        BadCase{"ClassesOnTabular", Replace("    schema:\n", "    classes: [a, b]\n    schema:\n"),
                "t.yaml:5: job.data.classes: only for data.kind: text"},
        BadCase{"ModelKeyUnknown", Replace("ffn_dim: 16}", "ffn_dim: 16, width: 3}"),
                "t.yaml:3: job.model.width: unknown key"},
        BadCase{"ModelInvalid", Replace("d_model: 8,", "d_model: 9,"),
                "job.model: d_model (9) must be a multiple of num_heads (2)"},
        BadCase{"TaskMismatch", Replace("label: {column: y, classes: [a, b]}", "label: {column: y, task: regression}"),
                "t.yaml:3: job.model: task is classification but the data schema's label is for regression"},
        BadCase{"ModelKindVsData", Replace(kModel, "  model: {kind: text_classifier, d_model: 8, num_heads: 2}\n"),
                "job.data.kind: a text_classifier model needs data.kind: text"},
        BadCase{"TextVocabRequired",
                "job:\n  name: t\n  model: {kind: text_classifier, d_model: 8, num_heads: 2}\n"
                "  data: {kind: text, classes: [neg, pos]}\n  rounds: 1\n  local: {epochs: 1}\n",
                "t.yaml:4: job.data.vocab: required unless the model is pretrained"},
        BadCase{"TextSchema",
                "job:\n  name: t\n  model: {kind: text_classifier, d_model: 8, num_heads: 2}\n"
                "  data: {kind: text, vocab: /v.txt, classes: [neg, pos], schema: {}}\n"
                "  rounds: 1\n  local: {epochs: 1}\n",
                "t.yaml:4: job.data.schema: only for data.kind: tabular"},
        BadCase{"TextOneClass",
                "job:\n  name: t\n  model: {kind: text_classifier, d_model: 8, num_heads: 2}\n"
                "  data: {kind: text, vocab: /v.txt, classes: [neg]}\n  rounds: 1\n  local: {epochs: 1}\n",
                "t.yaml:4: job.data.classes: list at least 2 classes"},
        BadCase{"RelativePretrained",
                "job:\n  name: t\n  model: {kind: text_classifier, pretrained: models/bert}\n"
                "  data: {kind: text, classes: [neg, pos]}\n  rounds: 1\n  local: {epochs: 1}\n",
                "t.yaml:3: job.model.pretrained: must be an absolute path in a job"},
        BadCase{"RelativeVocab",
                "job:\n  name: t\n  model: {kind: text_classifier, d_model: 8, num_heads: 2}\n"
                "  data: {kind: text, vocab: v.txt, classes: [neg, pos]}\n  rounds: 1\n  local: {epochs: 1}\n",
                "t.yaml:4: job.data.vocab: must be an absolute path in a job"}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return std::string(info.param.name); });

TEST(JobSpecTest, ReportsEveryProblemAtOnce) {
  auto job = Parse(With("    lr: -1\n  rounds_per_day: 3\n"));
  ASSERT_FALSE(job.ok());
  EXPECT_THAT(Message(job), HasSubstr("t.yaml:11: job.local.lr: must be in (0, 10], got -1"));
  EXPECT_THAT(Message(job), HasSubstr("t.yaml:12: job.rounds_per_day: unknown key"));
}

TEST(JobSpecTest, AcceptsTextJobs) {
  auto job = Parse("job:\n  name: notes\n  model: {kind: text_classifier, pretrained: /opt/bert, trainable: head}\n"
                   "  data: {kind: text, text_column: note, classes: [no, yes, maybe], max_length: 64}\n"
                   "  rounds: 1\n  local: {steps: 20}\n");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->data.kind, DataKind::kText);
  EXPECT_EQ(job->data.text.text_column, "note");
  EXPECT_EQ(job->data.max_length, 64);
  EXPECT_EQ(job->model.text().num_classes(), 3);
  EXPECT_EQ(job->model.pretrained(), "/opt/bert");
  EXPECT_EQ(job->local.steps, 20);
}

class ResolveJobFileTest : public ::testing::Test {
 protected:
  std::filesystem::path Write(const std::string& name, const std::string& text) {
    std::filesystem::create_directories((dir_ / name).parent_path());
    std::ofstream(dir_ / name) << text;
    return dir_ / name;
  }
  testing::TempDir dir_;
};

TEST_F(ResolveJobFileTest, InlinesReferencedFilesRelativeToTheJob) {
  Write("models/m.yaml", "model:\n  kind: tabular_transformer\n  d_model: 8\n  num_heads: 2\n");
  Write("data/s.yaml", "schema:\n  label: {column: y, classes: [a, b]}\n  features: [{name: x}]\n");
  auto text = ResolveJobFile(Write("jobs/j.yaml", "job:\n  name: j\n  model: ../models/m.yaml\n"
                                                  "  data: {schema: ../data/s.yaml}\n  rounds: 1\n"
                                                  "  local: {epochs: 1}\n"));
  ASSERT_TRUE(text.ok()) << text.status();
  auto job = ParseJobSpec(*text, "j");
  ASSERT_TRUE(job.ok()) << job.status() << "\n" << *text;
  EXPECT_EQ(job->model.tabular().encoder().d_model(), 8);
  EXPECT_EQ(job->data.schema.label, "y");
}

TEST_F(ResolveJobFileTest, ErrorsNameTheFileAtFault) {
  EXPECT_EQ(ResolveJobFile(dir_ / "absent.yaml").status().code(), absl::StatusCode::kNotFound);
  // A missing referenced file.
  auto missing = ResolveJobFile(Write("j1.yaml", "job:\n  name: j\n  model: nowhere.yaml\n  data: {schema: s.yaml}\n"
                                                 "  rounds: 1\n  local: {epochs: 1}\n"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("nowhere.yaml"));
  // A problem inside the model file names that file and line.
  Write("bad_model.yaml", "model:\n  kind: tabular_transformer\n  depth: 3\n");
  Write("s.yaml", "schema:\n  label: {column: y, classes: [a, b]}\n  features: [{name: x}]\n");
  auto bad_model = ResolveJobFile(Write("j2.yaml", "job:\n  name: j\n  model: bad_model.yaml\n  data: {schema: s.yaml}\n"
                                                   "  rounds: 1\n  local: {epochs: 1}\n"));
  EXPECT_THAT(std::string(bad_model.status().message()), HasSubstr("bad_model.yaml:3: model.depth: unknown key"));
  // A problem in the job file names the job file's own line, not the resolved text's.
  Write("m.yaml", "model:\n  kind: tabular_transformer\n  d_model: 8\n  num_heads: 2\n");
  auto bad_job = ResolveJobFile(Write("j3.yaml", "job:\n  name: j\n  model: m.yaml\n  data: {schema: s.yaml}\n"
                                                 "  rounds: 1\n  local: {epochs: 1, steps: 2}\n"));
  EXPECT_THAT(std::string(bad_job.status().message()),
              HasSubstr("j3.yaml:6: job.local.steps: give local.epochs or local.steps, not both"));
  // A schema file that is not a schema.
  Write("not_schema.yaml", "schema:\n  label: {column: y, task: regression}\n  features: []\n");
  auto bad_schema = ResolveJobFile(Write("j4.yaml", "job:\n  name: j\n  model: m.yaml\n  data: {schema: not_schema.yaml}\n"
                                                    "  rounds: 1\n  local: {epochs: 1}\n"));
  EXPECT_THAT(std::string(bad_schema.status().message()), HasSubstr("not_schema.yaml: schema: schema has no features"));
  // A pretrained path relative to the model file cannot mean anything at a site.
  Write("bert.yaml", "model:\n  kind: text_classifier\n  pretrained: bert-tiny\n");
  auto relative = ResolveJobFile(Write("j5.yaml", "job:\n  name: j\n  model: bert.yaml\n"
                                                  "  data: {kind: text, classes: [a, b]}\n"
                                                  "  rounds: 1\n  local: {epochs: 1}\n"));
  EXPECT_THAT(std::string(relative.status().message()),
              HasSubstr("bert.yaml:3: model.pretrained: must be an absolute path in a job"));
}

TEST(PlanSampleDpTest, RatesAndSteps) {
  JobSpec job = *Parse(With("  privacy:\n    sample_level: {noise_multiplier: 1.1}\n"));
  job.rounds = 10;
  job.local.epochs = 3;
  job.local.batch_size = 32;
  auto plan = PlanSampleDp(job, 100);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_DOUBLE_EQ(plan->sampling_rate, 0.32);
  EXPECT_EQ(plan->steps_per_round, 12);  // 3 epochs x ceil(100 / 32)
  EXPECT_EQ(plan->total_steps, 120);
  EXPECT_EQ(plan->noise_multiplier, 1.1);
  EXPECT_EQ(PlanSampleDp(job, 10)->sampling_rate, 1.0);  // a batch larger than the data
  job.local.epochs = 0;
  job.local.steps = 7;
  EXPECT_EQ(PlanSampleDp(job, 100)->steps_per_round, 7);
  EXPECT_EQ(PlanSampleDp(job, 0).status().code(), absl::StatusCode::kInvalidArgument);
  job.sample_dp.enabled = false;
  EXPECT_EQ(PlanSampleDp(job, 100).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PlanSampleDpTest, CalibratesTargetEpsilonForTheWholeJob) {
  JobSpec job = *Parse(With("  privacy:\n    sample_level: {target_epsilon: 2.0, delta: 1.0e-5}\n"));
  job.rounds = 5;
  auto plan = PlanSampleDp(job, 400);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->total_steps, 5 * 13);
  const auto spent = dp::ComputeEpsilon(plan->sampling_rate, plan->noise_multiplier, plan->total_steps, 1e-5);
  ASSERT_TRUE(spent.ok());
  EXPECT_LE(spent->epsilon, 2.0);
  EXPECT_GT(spent->epsilon, 1.99);
  job.sample_dp.target_epsilon = 1e-4;  // below the accountant's floor
  EXPECT_EQ(PlanSampleDp(job, 400).status().code(), absl::StatusCode::kOutOfRange);
}

}  // namespace
}  // namespace fedattn::models
