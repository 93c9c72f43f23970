// One training step (forward + backward + AdamW) of the text classifier, as fedattn's trainer runs
// it: milliseconds per step and tokens/s. bench/run_train_step.sh runs this and
// bench/train_step.py (the same model and step in PyTorch) and prints the C++/Python ratio.
//
//   train_step_bench --model reference|bert-base [--batch N] [--seq N] [--steps N] [--warmup N]
//                    [--threads N] [--padding dense|heavy]
//
// Ends with one JSON object per line: model, cpp_ms_per_step, tokens_per_s, threads, ...
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include <torch/torch.h>

#include "absl/strings/str_format.h"
#include "fedattn/models/trainer.h"
#include "fedattn/models/transformer.h"

namespace {

using fedattn::models::Batch;

struct Args {
  std::string model = "reference";
  int64_t batch = 32, seq = 128, steps = 20, warmup = 3, threads = 0;
  std::string padding = "dense";
};

Args Parse(int argc, char** argv) {
  Args args;
  bool batch_set = false, steps_set = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--model") args.model = value;
    else if (key == "--batch") args.batch = std::stoll(value), batch_set = true;
    else if (key == "--seq") args.seq = std::stoll(value);
    else if (key == "--steps") args.steps = std::stoll(value), steps_set = true;
    else if (key == "--warmup") args.warmup = std::stoll(value);
    else if (key == "--threads") args.threads = std::stoll(value);
    else if (key == "--padding") args.padding = value;
    else {
      std::fprintf(stderr, "unknown flag %s\n", key.c_str());
      std::exit(2);
    }
  }
  if (args.model == "bert-base") {  // ~110M parameters: keep CPU runs short unless asked
    if (!batch_set) args.batch = 8;
    if (!steps_set) args.steps = 3;
  }
  return args;
}

// Same shapes and the same random-number recipe as train_step.py's make_batch (lengths uniform in
// [seq/8, seq] for "heavy" padding), so both sides see the same amount of padding.
Batch MakeBatch(const Args& args, int64_t vocab) {
  torch::manual_seed(0);
  Batch batch;
  batch.input_ids = torch::randint(5, vocab, {args.batch, args.seq}, torch::kInt64);
  torch::Tensor lengths = torch::full({args.batch}, args.seq, torch::kInt64);
  if (args.padding == "heavy") lengths = torch::randint(args.seq / 8, args.seq + 1, {args.batch}, torch::kInt64);
  batch.attention_mask = (torch::arange(args.seq).unsqueeze(0) < lengths.unsqueeze(1)).to(torch::kInt64);
  batch.input_ids.masked_fill_(batch.attention_mask.eq(0), 0);
  batch.token_type_ids = torch::zeros_like(batch.input_ids);
  batch.labels = torch::randint(0, 2, {args.batch}, torch::kInt64);
  return batch;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = Parse(argc, argv);
  fedattn::models::ModelOptions options;
  fedattn::models::EncoderOptions encoder;
  if (args.model == "bert-base") {
    encoder.d_model(768).num_layers(12).num_heads(12).ffn_dim(3072);
    options.text().vocab_size(30522).max_positions(512);
  } else {
    encoder.d_model(128).num_layers(2).num_heads(4).ffn_dim(512);
    options.text().vocab_size(8000).max_positions(std::max<int64_t>(args.seq, 128));
  }
  options.text().encoder(encoder.dropout(0.1).attention_dropout(0.1));
  auto model = fedattn::models::BuildModel(options, 0);
  if (!model.ok()) {
    std::cerr << model.status() << "\n";
    return 1;
  }
  auto trainer = fedattn::models::Trainer::Create(
      *model,
      fedattn::models::TrainerOptions().threads(args.threads).max_grad_norm(1.0).optimizer(
          fedattn::models::AdamWOptions().lr(1e-4).weight_decay(0.01)),
      nullptr);
  if (!trainer.ok()) {
    std::cerr << trainer.status() << "\n";
    return 1;
  }
  const Batch batch = fedattn::models::SliceBatch(MakeBatch(args, options.text().vocab_size()),
                                                  torch::arange(args.batch, torch::kInt64));
  const int64_t tokens = batch.tokens();
  for (int64_t i = 0; i < args.warmup; ++i) {
    if (auto loss = (*trainer)->TrainStep(batch, 1e-4); !loss.ok()) {
      std::cerr << loss.status() << "\n";
      return 1;
    }
  }
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < args.steps; ++i) {
    if (auto loss = (*trainer)->TrainStep(batch, 1e-4); !loss.ok()) {
      std::cerr << loss.status() << "\n";
      return 1;
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double ms = 1e3 * seconds / static_cast<double>(args.steps);
  const char* wait = std::getenv("OMP_WAIT_POLICY");
  std::cout << absl::StrFormat(
                   R"({"model": "%s", "padding": "%s", "batch": %d, "seq": %d, "threads": %d, "omp_wait_policy": "%s", )"
                   R"("parameters": %d, "real_tokens": %d, "cpp_ms_per_step": %.3f, "tokens_per_s": %.1f})",
                   args.model, args.padding, args.batch, args.seq, at::get_num_threads(), wait ? wait : "",
                   (*trainer)->flat().params().numel(), tokens, ms,
                   static_cast<double>(tokens * args.steps) / seconds)
            << std::endl;
  return 0;
}
