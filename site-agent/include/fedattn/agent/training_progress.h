// Shows a round's local training as it runs: on a terminal, one bar redrawn in place (epoch,
// step, loss, examples/s); elsewhere (a log file, systemd's journal), a plain log line every few
// seconds and at the end, so logs stay readable.
//
// Not thread-safe: Update is called from the training thread.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fedattn/models/train_progress.h"

namespace fedattn::agent {

// "[##########----------]  50% epoch 1/2 step 10/20 loss 0.4123 850 ex/s" (`width` bar cells).
std::string FormatProgressBar(const models::TrainProgress& progress, int width = 24);
// "epoch 1/2 step 10/20 (50%) loss 0.4123, 850 examples/s[, DP-SGD]".
std::string FormatProgressLine(const models::TrainProgress& progress);

class TrainingProgressPrinter {
 public:
  // `out` must outlive the printer. terminal: draw a bar on `out` (use IsTerminal); otherwise
  // emit a line at most every `line_interval`, and always for a Fit's first and last steps,
  // through `log_line` (e.g. the agent's logger) or, when it is empty, on `out`.
  TrainingProgressPrinter(std::ostream* out, bool terminal, absl::Duration line_interval = absl::Seconds(10),
                          std::function<void(const std::string&)> log_line = nullptr);
  // True when file descriptor `fd` is a terminal (isatty) and TERM is not "dumb".
  static bool IsTerminal(int fd);

  void Update(const models::TrainProgress& progress) { Update(progress, absl::Now()); }
  void Update(const models::TrainProgress& progress, absl::Time now);

 private:
  std::ostream* out_;
  bool terminal_;
  absl::Duration line_interval_;
  std::function<void(const std::string&)> log_line_;
  absl::Time last_output_ = absl::InfinitePast();
  int64_t last_step_ = 0;
};

}  // namespace fedattn::agent
