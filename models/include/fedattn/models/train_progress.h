// What a Trainer reports after every optimizer step (Trainer::set_progress_callback), for
// progress bars and log lines. LibTorch-free, so progress printers need not link LibTorch.
#pragma once

#include <cstdint>
#include <functional>

namespace fedattn::models {

struct TrainProgress {
  int64_t epoch = 0;        // 1-based; in DP-SGD an "epoch" is round(1/q) steps
  int64_t epochs = 0;
  int64_t step = 0;         // optimizer steps taken so far in this Fit (1-based)
  int64_t total_steps = 0;
  double loss = 0;                  // this step's mean batch loss
  int64_t examples = 0;             // training examples seen so far in this Fit
  double examples_per_second = 0;   // examples / seconds since the Fit began
  bool dp_sgd = false;
};

// Called on the training thread after every step; keep it cheap.
using TrainProgressCallback = std::function<void(const TrainProgress&)>;

}  // namespace fedattn::models
