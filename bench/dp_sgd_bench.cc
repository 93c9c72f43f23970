// DP-SGD against non-private training: milliseconds per step and peak memory of one training
// step (forward, backward, optimizer) for the same model and the same (expected) batch, plus the
// naive per-example loop that the one-pass per-example norms of dp_ops.h replace.
//
//   dp_sgd_bench [--models text,tabular] [--steps N] [--warmup N] [--threads N] [--repeats N]
//                [--text-batch 32] [--seq 128] [--tabular-batch 64]
//
// Models: the reference text classifier (configs/models/text_reference.yaml) on dense random
// sequences, and the FT-Transformer of configs/models/ft_transformer_small.yaml on random records
// of WDBC's shape (30 numeric features, 2 classes). Each measurement runs in its own child
// process (this binary re-executed with --child), so peak RSS (getrusage) is that mode's alone.
// Time is the median step of the child's timed steps; with --repeats, the fastest child.
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

// One mode, in this (child) process: prints one JSON line.
int RunChild(const Args& args) {
  Workload w = MakeWorkload(args, args.child_model);
  auto trainer = fedattn::models::Trainer::Create(
      w.model,
      fedattn::models::TrainerOptions().threads(args.threads).max_grad_norm(1.0).optimizer(
          fedattn::models::AdamWOptions().lr(1e-4).weight_decay(0.01)),
      nullptr);
  if (!trainer.ok()) Usage(std::string(trainer.status().message()));
  const auto expected = static_cast<double>(w.batch.size());
  if (args.child_mode == "dp") {
    auto status = (*trainer)->EnableDpSgd(
        fedattn::models::DpSgdOptions().noise_multiplier(1.0).max_grad_norm(1.0).expected_batch_size(expected));
    if (!status.ok()) Usage(std::string(status.message()));
  } else if (args.child_mode == "naive") {
    auto step = fedattn::models::DpSgdStep::Create(fedattn::models::DpSgdStepOptions()
                                                      .noise_multiplier(1.0)
                                                      .max_grad_norm(1.0)
                                                      .expected_batch_size(expected)
                                                      .naive_loop(true));
    if (!step.ok()) Usage(std::string(step.status().message()));
    (*trainer)->set_gradient_step(std::move(*step));
  } else if (args.child_mode != "nondp") {
    Usage("unknown mode " + args.child_mode);
  }
  const Batch batch = fedattn::models::SliceBatch(w.batch, torch::arange(w.batch.size()));
  const double rss_before = CurrentRssMb();
  // The naive loop is many times slower: fewer steps keep the run short.
  const int64_t steps = args.child_mode == "naive" ? std::max<int64_t>(2, args.steps / 5) : args.steps;
  const int64_t warmup = args.child_mode == "naive" ? 1 : args.warmup;
  // DP_SGD_BENCH_TRACE=file: a chrome trace (LibTorch's legacy profiler) of the timed steps.
  std::unique_ptr<torch::autograd::profiler::RecordProfile> trace;
  std::vector<double> ms;
  for (int64_t i = 0; i < warmup + steps; ++i) {
    if (i == warmup && std::getenv("DP_SGD_BENCH_TRACE") != nullptr) {
      trace = std::make_unique<torch::autograd::profiler::RecordProfile>(
          absl::StrFormat("%s.%s.%s.json", std::getenv("DP_SGD_BENCH_TRACE"), args.child_model, args.child_mode));
    }
    const auto start = std::chrono::steady_clock::now();
    auto loss = (*trainer)->TrainStep(batch, 1e-4);
    if (!loss.ok()) Usage(std::string(loss.status().message()));
    if (i >= warmup) ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  trace.reset();
  // The share of a DP step spent drawing the noise (CSPRNG + Box–Muller over every parameter).
  double noise_ms = 0;
  if (args.child_mode == "dp") {
    auto rng = fedattn::dp::SecureRng::Create();
    const torch::Tensor scratch = torch::zeros_like((*trainer)->flat().grads());
    const auto start = std::chrono::steady_clock::now();
    if (!fedattn::models::AddSecureGaussianNoise(scratch, 1.0, *rng).ok()) Usage("noise failed");
    noise_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  double mean = 0;
  for (double m : ms) mean += m / static_cast<double>(ms.size());
  std::cout << absl::StrFormat(
                   R"({"mode": "%s", "model": "%s", "median_ms": %.3f, "mean_ms": %.3f, "peak_rss_mb": %.1f, )"
                   R"("rss_before_mb": %.1f, "noise_ms": %.3f, "parameters": %d, "threads": %d})",
                   args.child_mode, args.child_model, sorted[sorted.size() / 2], mean, PeakRssMb(), rss_before, noise_ms,
                   (*trainer)->flat().params().numel(), at::get_num_threads())
            << std::endl;
  return 0;
}

struct ChildResult {
  double median_ms = 0, mean_ms = 0, peak_rss_mb = 0, rss_before_mb = 0, noise_ms = 0;
  int64_t parameters = 0, threads = 0;
};

double Field(const std::string& json, const std::string& key) {
  const std::string needle = "\"" + key + "\": ";
  const size_t at = json.find(needle);
  if (at == std::string::npos) Usage("child output lacks " + key + ": " + json);
  return std::stod(json.substr(at + needle.size()));
}

ChildResult RunInChild(const std::string& self, const Args& args, const std::string& mode, const std::string& model) {
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
  ChildResult r;
  r.median_ms = Field(last, "median_ms");
  r.mean_ms = Field(last, "mean_ms");
  r.peak_rss_mb = Field(last, "peak_rss_mb");
  r.rss_before_mb = Field(last, "rss_before_mb");
  r.noise_ms = Field(last, "noise_ms");
  r.parameters = static_cast<int64_t>(Field(last, "parameters"));
  r.threads = static_cast<int64_t>(Field(last, "threads"));
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = Parse(argc, argv);
  if (!args.child_mode.empty()) return RunChild(args);
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
    ChildResult nondp, dp, naive;
    for (int64_t r = 0; r < args.repeats; ++r) {
      // Interleaved, so a burst of contention from other processes hits all modes alike.
      for (const char* mode : {"nondp", "dp", "naive"}) {
        ChildResult result = RunInChild(self, args, mode, model);
        ChildResult& best = mode == std::string("nondp") ? nondp : mode == std::string("dp") ? dp : naive;
        if (r == 0 || result.median_ms < best.median_ms) best = result;
        std::cerr << absl::StrFormat("%s %-5s median %.2f ms/step (mean %.2f), peak RSS %.1f MB (%.1f MB before steps)\n",
                                     model, mode, result.median_ms, result.mean_ms, result.peak_rss_mb,
                                     result.rss_before_mb);
      }
    }
    const bool text = model == "text";
    lines.push_back(absl::StrFormat(
        R"({"model": "%s", "batch": %d, "seq": %d, "parameters": %d, "threads": %d, )"
        R"("dp_ms_per_step": %.3f, "nondp_ms_per_step": %.3f, "ratio": %.3f, "naive_ms_per_step": %.3f, )"
        R"("naive_ratio": %.3f, "dp_peak_rss_mb": %.1f, "nondp_peak_rss_mb": %.1f, "memory_ratio": %.3f, )"
        R"("naive_peak_rss_mb": %.1f, "naive_memory_ratio": %.3f, "noise_ms": %.3f, "load_avg_before": "%s", )"
        R"("load_avg_after": "%s"})",
        text ? "text_reference" : "ft_transformer_small", text ? args.text_batch : args.tabular_batch,
        text ? args.seq : 31, dp.parameters, dp.threads, dp.median_ms, nondp.median_ms, dp.median_ms / nondp.median_ms,
        naive.median_ms, naive.median_ms / nondp.median_ms, dp.peak_rss_mb, nondp.peak_rss_mb,
        dp.peak_rss_mb / nondp.peak_rss_mb, naive.peak_rss_mb, naive.peak_rss_mb / nondp.peak_rss_mb, dp.noise_ms, load_before,
        LoadAverage()));
  }
  for (const std::string& line : lines) std::cout << line << "\n";
  return 0;
}
