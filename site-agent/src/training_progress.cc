#include "fedattn/agent/training_progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace fedattn::agent {
namespace {

constexpr absl::Duration kBarInterval = absl::Milliseconds(100);  // redraws at most 10 times a second

double Fraction(const models::TrainProgress& progress) {
  if (progress.total_steps <= 0) return 0;
  return std::clamp(static_cast<double>(progress.step) / static_cast<double>(progress.total_steps), 0.0, 1.0);
}

}  // namespace

std::string FormatProgressBar(const models::TrainProgress& progress, int width) {
  width = std::max(1, width);
  const double fraction = Fraction(progress);
  const int filled = static_cast<int>(fraction * width);
  return absl::StrFormat("[%s%s] %3d%% epoch %d/%d step %d/%d loss %.4f %.0f ex/s%s", std::string(filled, '#'),
                         std::string(width - filled, '-'), static_cast<int>(fraction * 100), progress.epoch,
                         progress.epochs, progress.step, progress.total_steps, progress.loss,
                         progress.examples_per_second, progress.dp_sgd ? " DP-SGD" : "");
}

std::string FormatProgressLine(const models::TrainProgress& progress) {
  return absl::StrFormat("epoch %d/%d step %d/%d (%d%%) loss %.4f, %.0f examples/s%s", progress.epoch,
                         progress.epochs, progress.step, progress.total_steps,
                         static_cast<int>(Fraction(progress) * 100), progress.loss, progress.examples_per_second,
                         progress.dp_sgd ? ", DP-SGD" : "");
}

TrainingProgressPrinter::TrainingProgressPrinter(std::ostream* out, bool terminal, absl::Duration line_interval,
                                                 std::function<void(const std::string&)> log_line)
    : out_(out), terminal_(terminal), line_interval_(line_interval), log_line_(std::move(log_line)) {}

bool TrainingProgressPrinter::IsTerminal(int fd) {
  const char* term = std::getenv("TERM");
  return ::isatty(fd) == 1 && (term == nullptr || std::strcmp(term, "dumb") != 0);
}

void TrainingProgressPrinter::Update(const models::TrainProgress& progress, absl::Time now) {
  if (progress.step < last_step_) last_output_ = absl::InfinitePast();  // a new Fit
  last_step_ = progress.step;
  const bool last = progress.step >= progress.total_steps;
  if (terminal_) {
    if (!last && now - last_output_ < kBarInterval) return;
    // Carriage return and erase-line: the bar replaces itself; a newline once it is full.
    *out_ << "\r\x1b[Ktraining " << FormatProgressBar(progress) << (last ? "\n" : "") << std::flush;
  } else {
    if (!last && now - last_output_ < line_interval_) return;
    const std::string line = FormatProgressLine(progress);
    if (log_line_) {
      log_line_(line);
    } else {
      *out_ << "training: " << line << "\n" << std::flush;
    }
  }
  last_output_ = now;
}

}  // namespace fedattn::agent
