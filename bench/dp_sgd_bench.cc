// DP-SGD against non-private training: milliseconds per step and peak memory of one training
// step (forward, backward, optimizer) for the same model and the same (expected) batch, plus the
// naive per-example loop that the one-pass per-example norms of dp_ops.h replace.
//
//   dp_sgd_bench [--models text,tabular] [--steps N] [--warmup N] [--threads N] [--repeats N]
//                [--text-batch 32] [--seq 128] [--tabular-batch 64]
//
// Models: the reference text classifier (configs/models/text_reference.yaml) on dense random
// sequences, and the FT-Transformer of configs/models/ft_transformer_small.yaml on random records
// of WDBC's shape (30 numeric features, 2 classes); a fixed batch of the expected size.
// Time: one child process (this binary re-executed with --child timing) builds the three modes
// and interleaves their steps, so bursts of load from other processes on a shared machine hit all
// of them alike; each mode's figure is its median step, and with --repeats the least disturbed
// child (lowest non-private median) is kept. Memory: each mode alone in its own child process,
// a few steps, peak RSS from getrusage, so the peaks do not mix.
//
// Ends with one JSON object per model: model, dp_ms_per_step, nondp_ms_per_step, ratio,
// naive_ms_per_step, naive_ratio, dp_peak_rss_mb, nondp_peak_rss_mb, memory_ratio, ...
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "fedattn/models/dp_sgd.h"
#include "fedattn/models/model_spec.h"
#include "fedattn/models/trainer.h"
#include "fedattn/models/transformer.h"

namespace {

using fedattn::models::Batch;

struct Args {
  std::string models = "text,tabular";
  std::string child_mode, child_model;  // set in a child
  int64_t steps = 20, warmup = 3, threads = 0, repeats = 1;
  int64_t text_batch = 32, seq = 128, tabular_batch = 64;
};

[[noreturn]] void Usage(const std::string& message) {
  std::fprintf(stderr, "dp_sgd_bench: %s\n", message.c_str());
  std::exit(2);
}

Args Parse(int argc, char** argv) {
  Args args;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--models") args.models = value;
    else if (key == "--child") args.child_mode = value;
    else if (key == "--model") args.child_model = value;
    else if (key == "--steps") args.steps = std::stoll(value);
    else if (key == "--warmup") args.warmup = std::stoll(value);
    else if (key == "--threads") args.threads = std::stoll(value);
    else if (key == "--repeats") args.repeats = std::stoll(value);
    else if (key == "--text-batch") args.text_batch = std::stoll(value);
    else if (key == "--seq") args.seq = std::stoll(value);
    else if (key == "--tabular-batch") args.tabular_batch = std::stoll(value);
    else Usage("unknown flag " + key);
  }
  if (argc % 2 == 0) Usage("flags take one value each");
  return args;
}

double PeakRssMb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux: KiB
}

double CurrentRssMb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

// The model and a fixed batch of the expected size (Poisson variance left out: both modes do the
// same work per step).
struct Workload {
  std::shared_ptr<fedattn::models::ModelImpl> model;
  Batch batch;
};

Workload MakeWorkload(const Args& args, const std::string& name) {
  const std::string dir = FEDATTN_SOURCE_DIR "/configs/models/";
  auto options = fedattn::models::LoadModelOptions(dir + (name == "text" ? "text_reference.yaml" : "ft_transformer_small.yaml"));
  if (!options.ok()) Usage(std::string(options.status().message()));
  torch::manual_seed(0);
  Workload w;
  if (name == "text") {
    options->text().max_positions(std::max<int64_t>(args.seq, options->text().max_positions()));
    w.batch.input_ids = torch::randint(5, options->text().vocab_size(), {args.text_batch, args.seq}, torch::kInt64);
    w.batch.attention_mask = torch::ones({args.text_batch, args.seq}, torch::kInt64);
    w.batch.token_type_ids = torch::zeros_like(w.batch.input_ids);
    w.batch.labels = torch::randint(0, 2, {args.text_batch}, torch::kInt64);
  } else {
    options->tabular().num_numeric(30).num_classes(2);  // WDBC's shape
    w.batch.numeric = torch::randn({args.tabular_batch, 30});
    w.batch.labels = torch::randint(0, 2, {args.tabular_batch}, torch::kInt64);
  }
  auto model = fedattn::models::BuildModel(*options, 0);
  if (!model.ok()) Usage(std::string(model.status().message()));
  w.model = *model;
  return w;
}

std::unique_ptr<fedattn::models::Trainer> MakeTrainer(const Args& args, const std::string& mode, Workload& w) {
  auto trainer = fedattn::models::Trainer::Create(
      w.model,
      fedattn::models::TrainerOptions().threads(args.threads).max_grad_norm(1.0).optimizer(
          fedattn::models::AdamWOptions().lr(1e-4).weight_decay(0.01)),
      nullptr);
  if (!trainer.ok()) Usage(std::string(trainer.status().message()));
  const auto expected = static_cast<double>(w.batch.size());
  if (mode == "dp") {
    auto status = (*trainer)->EnableDpSgd(
        fedattn::models::DpSgdOptions().noise_multiplier(1.0).max_grad_norm(1.0).expected_batch_size(expected));
    if (!status.ok()) Usage(std::string(status.message()));
  } else if (mode == "naive") {
    auto step = fedattn::models::DpSgdStep::Create(fedattn::models::DpSgdStepOptions()
                                                      .noise_multiplier(1.0)
                                                      .max_grad_norm(1.0)
                                                      .expected_batch_size(expected)
                                                      .naive_loop(true));
    if (!step.ok()) Usage(std::string(step.status().message()));
    (*trainer)->set_gradient_step(std::move(*step));
  } else if (mode != "nondp") {
    Usage("unknown mode " + mode);
  }
  return std::move(*trainer);
}

double TimedStep(fedattn::models::Trainer& trainer, const Batch& batch) {
  const auto start = std::chrono::steady_clock::now();
  auto loss = trainer.TrainStep(batch, 1e-4);
  if (!loss.ok()) Usage(std::string(loss.status().message()));
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Time: the three modes' steps interleaved in one process (nondp, dp, naive, nondp, ...), each on
// its own copy of the model, so that bursts of load from other processes hit all of them alike.
int RunTimingChild(const Args& args) {
  std::vector<Workload> workloads;
  std::vector<std::unique_ptr<fedattn::models::Trainer>> trainers;
  const std::vector<std::string> modes = {"nondp", "dp", "naive"};
  for (const std::string& mode : modes) {
    workloads.push_back(MakeWorkload(args, args.child_model));
    trainers.push_back(MakeTrainer(args, mode, workloads.back()));
  }
  const Batch batch = fedattn::models::SliceBatch(workloads[0].batch, torch::arange(workloads[0].batch.size()));
  // The naive loop is many times slower on some models: it takes part in fewer rounds.
  const int64_t naive_rounds = std::max<int64_t>(3, args.steps / 4);
  std::vector<std::vector<double>> ms(modes.size());
  std::vector<double> ratios;
  for (int64_t i = 0; i < args.warmup + args.steps; ++i) {
    std::vector<double> round(modes.size(), 0);
    for (size_t m = 0; m < modes.size(); ++m) {
      if (modes[m] == "naive" && i >= args.warmup + naive_rounds) continue;
      round[m] = TimedStep(*trainers[m], batch);
      if (i >= args.warmup) ms[m].push_back(round[m]);
    }
    if (i >= args.warmup) ratios.push_back(round[1] / round[0]);
  }
  std::cout << absl::StrFormat(
                   R"({"mode": "timing", "model": "%s", "nondp_ms": %.3f, "dp_ms": %.3f, "naive_ms": %.3f, )"
                   R"("nondp_min_ms": %.3f, "dp_min_ms": %.3f, "median_round_ratio": %.4f, "parameters": %d, "threads": %d})",
                   args.child_model, Median(ms[0]), Median(ms[1]), Median(ms[2]),
                   *std::min_element(ms[0].begin(), ms[0].end()), *std::min_element(ms[1].begin(), ms[1].end()),
                   Median(ratios), trainers[1]->flat().params().numel(), at::get_num_threads())
            << std::endl;
  return 0;
}

// Memory: one mode alone in this process, a few steps: prints its peak RSS as one JSON line.
int RunMemoryChild(const Args& args) {
  Workload w = MakeWorkload(args, args.child_model);
  std::unique_ptr<fedattn::models::Trainer> trainer = MakeTrainer(args, args.child_mode, w);
  const Batch batch = fedattn::models::SliceBatch(w.batch, torch::arange(w.batch.size()));
  const double rss_before = CurrentRssMb();
  // DP_SGD_BENCH_TRACE=file: a chrome trace (LibTorch's legacy profiler) of the steps after the first.
  std::unique_ptr<torch::autograd::profiler::RecordProfile> trace;
  std::vector<double> ms;
  const int64_t memory_steps = std::getenv("DP_SGD_BENCH_TRACE") != nullptr ? 12 : 3;
  for (int64_t i = 0; i < memory_steps; ++i) {
    if (i == 1 && std::getenv("DP_SGD_BENCH_TRACE") != nullptr) {
      trace = std::make_unique<torch::autograd::profiler::RecordProfile>(
          absl::StrFormat("%s.%s.%s.json", std::getenv("DP_SGD_BENCH_TRACE"), args.child_model, args.child_mode));
    }
    ms.push_back(TimedStep(*trainer, batch));
  }
  trace.reset();
  // The share of a DP step spent drawing the noise (CSPRNG + Box–Muller over every parameter).
  double noise_ms = 0;
  if (args.child_mode == "dp") {
    auto rng = fedattn::dp::SecureRng::Create();
    const torch::Tensor scratch = torch::zeros_like(trainer->flat().grads());
    const auto start = std::chrono::steady_clock::now();
    if (!fedattn::models::AddSecureGaussianNoise(scratch, 1.0, *rng).ok()) Usage("noise failed");
    noise_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }
  std::cout << absl::StrFormat(
                   R"({"mode": "%s", "model": "%s", "peak_rss_mb": %.1f, "rss_before_mb": %.1f, "noise_ms": %.3f, )"
                   R"("last_step_ms": %.3f})",
                   args.child_mode, args.child_model, PeakRssMb(), rss_before, noise_ms, ms.back())
            << std::endl;
  return 0;
}

double Field(const std::string& json, const std::string& key) {
  const std::string needle = "\"" + key + "\": ";
  const size_t at = json.find(needle);
  if (at == std::string::npos) Usage("child output lacks " + key + ": " + json);
  return std::stod(json.substr(at + needle.size()));
}

// Runs this binary with --child MODE --model MODEL and returns its last output line.
std::string RunChild(const std::string& self, const Args& args, const std::string& mode, const std::string& model) {
  const std::string command = absl::StrFormat(
      "'%s' --child %s --model %s --steps %d --warmup %d --threads %d --text-batch %d --seq %d --tabular-batch %d",
      self, mode, model, args.steps, args.warmup, args.threads, args.text_batch, args.seq, args.tabular_batch);
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) Usage("cannot start " + command);
  std::string output, last;
  char buffer[4096];
  while (std::fgets(buffer, sizeof(buffer), pipe) != nullptr) output += buffer;
  if (pclose(pipe) != 0) Usage("child failed: " + command + "\n" + output);
  for (const absl::string_view line : absl::StrSplit(output, '\n', absl::SkipEmpty())) last = std::string(line);
  return last;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = Parse(argc, argv);
  if (args.child_mode == "timing") return RunTimingChild(args);
  if (!args.child_mode.empty()) return RunMemoryChild(args);
  // Children inherit this: spinning OpenMP threads distort timings on shared cores.
  setenv("OMP_WAIT_POLICY", "passive", 0);
  char self[4096];
  const ssize_t length = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (length <= 0) Usage("cannot find this executable");
  self[length] = '\0';
  std::vector<std::string> lines;
  for (const absl::string_view model_view : absl::StrSplit(args.models, ',', absl::SkipEmpty())) {
    const std::string model(model_view);
    if (model != "text" && model != "tabular") Usage("--models takes text and/or tabular");
    const std::string load_before = LoadAverage();
    // Time: the repeat with the lowest non-private median (the least disturbed one).
    std::string timing;
    for (int64_t r = 0; r < args.repeats; ++r) {
      const std::string run = RunChild(self, args, "timing", model);
      std::cerr << model << " " << run << "\n";
      if (timing.empty() || Field(run, "nondp_ms") < Field(timing, "nondp_ms")) timing = run;
    }
    std::map<std::string, std::string> memory;
    for (const char* mode : {"nondp", "dp", "naive"}) {
      memory[mode] = RunChild(self, args, mode, model);
      std::cerr << model << " " << memory[mode] << "\n";
    }
    const bool text = model == "text";
    const double nondp_ms = Field(timing, "nondp_ms"), dp_ms = Field(timing, "dp_ms"), naive_ms = Field(timing, "naive_ms");
    const double nondp_rss = Field(memory["nondp"], "peak_rss_mb"), dp_rss = Field(memory["dp"], "peak_rss_mb");
    const double naive_rss = Field(memory["naive"], "peak_rss_mb");
    lines.push_back(absl::StrFormat(
        R"({"model": "%s", "batch": %d, "seq": %d, "parameters": %d, "threads": %d, )"
        R"("dp_ms_per_step": %.3f, "nondp_ms_per_step": %.3f, "ratio": %.3f, "median_round_ratio": %.3f, )"
        R"("naive_ms_per_step": %.3f, "naive_ratio": %.3f, "dp_peak_rss_mb": %.1f, "nondp_peak_rss_mb": %.1f, )"
        R"("memory_ratio": %.3f, "naive_peak_rss_mb": %.1f, "naive_memory_ratio": %.3f, "rss_before_steps_mb": %.1f, )"
        R"("noise_ms": %.3f, "load_avg_before": "%s", "load_avg_after": "%s"})",
        text ? "text_reference" : "ft_transformer_small", text ? args.text_batch : args.tabular_batch,
        text ? args.seq : 31, static_cast<int64_t>(Field(timing, "parameters")),
        static_cast<int64_t>(Field(timing, "threads")), dp_ms, nondp_ms, dp_ms / nondp_ms,
        Field(timing, "median_round_ratio"), naive_ms, naive_ms / nondp_ms, dp_rss, nondp_rss, dp_rss / nondp_rss,
        naive_rss, naive_rss / nondp_rss, Field(memory["nondp"], "rss_before_mb"), Field(memory["dp"], "noise_ms"),
        load_before, LoadAverage()));
  }
  for (const std::string& line : lines) std::cout << line << "\n";
  return 0;
}
