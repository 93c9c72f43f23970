#include "fedattn/agent/training_progress.h"

#include <algorithm>
#include <sstream>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedattn::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

models::TrainProgress Step(int64_t step, int64_t total = 20, double loss = 0.5) {
  models::TrainProgress progress;
  progress.epoch = step <= 10 ? 1 : 2;
  progress.epochs = 2;
  progress.step = step;
  progress.total_steps = total;
  progress.loss = loss;
  progress.examples = 32 * step;
  progress.examples_per_second = 850.4;
  return progress;
}

TEST(TrainingProgressTest, FormatsBarAndLine) {
  EXPECT_EQ(FormatProgressBar(Step(10), 10), "[#####-----]  50% epoch 1/2 step 10/20 loss 0.5000 850 ex/s");
  EXPECT_EQ(FormatProgressBar(Step(20), 4), "[####] 100% epoch 2/2 step 20/20 loss 0.5000 850 ex/s");
  EXPECT_EQ(FormatProgressLine(Step(5)), "epoch 1/2 step 5/20 (25%) loss 0.5000, 850 examples/s");
  models::TrainProgress dp = Step(1);
  dp.dp_sgd = true;
  EXPECT_THAT(FormatProgressBar(dp), HasSubstr(" DP-SGD"));
  EXPECT_THAT(FormatProgressLine(dp), HasSubstr(", DP-SGD"));
  // No total (never expected): 0%, no division by zero.
  EXPECT_THAT(FormatProgressLine(Step(3, 0)), HasSubstr("(0%)"));
}

TEST(TrainingProgressTest, TerminalBarRedrawsInPlaceAtMostTenTimesASecond) {
  std::ostringstream out;
  TrainingProgressPrinter printer(&out, /*terminal=*/true);
  const absl::Time t0 = absl::FromUnixSeconds(100);
  printer.Update(Step(1), t0);
  printer.Update(Step(2), t0 + absl::Milliseconds(50));   // too soon: skipped
  printer.Update(Step(3), t0 + absl::Milliseconds(150));
  printer.Update(Step(20), t0 + absl::Milliseconds(160));  // the last step is always drawn
  const std::string text = out.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\r'), 3);
  EXPECT_THAT(text, HasSubstr("\r\x1b[Ktraining [#"));
  EXPECT_THAT(text, Not(HasSubstr("step 2/20")));
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);
}

TEST(TrainingProgressTest, PlainLinesEveryIntervalFirstAndLast) {
  std::vector<std::string> lines;
  std::ostringstream unused;
  TrainingProgressPrinter printer(&unused, /*terminal=*/false, absl::Seconds(10),
                                  [&lines](const std::string& line) { lines.push_back(line); });
  const absl::Time t0 = absl::FromUnixSeconds(100);
  for (int step = 1; step <= 20; ++step) printer.Update(Step(step), t0 + absl::Seconds(step));
  // Step 1 (first), step 11 (10 s later), step 20 (last).
  EXPECT_THAT(lines, ElementsAre(HasSubstr("step 1/20"), HasSubstr("step 11/20"), HasSubstr("step 20/20")));
  EXPECT_EQ(unused.str(), "");
  // A new Fit (the step count starts again) prints its first step at once.
  printer.Update(Step(1), t0 + absl::Seconds(21));
  EXPECT_EQ(lines.size(), 4u);
}

TEST(TrainingProgressTest, PlainLinesGoToTheStreamWithoutALogger) {
  std::ostringstream out;
  TrainingProgressPrinter printer(&out, /*terminal=*/false);
  printer.Update(Step(20), absl::FromUnixSeconds(1));
  EXPECT_EQ(out.str(), "training: epoch 2/2 step 20/20 (100%) loss 0.5000, 850 examples/s\n");
}

}  // namespace
}  // namespace fedattn::agent
