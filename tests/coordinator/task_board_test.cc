#include "fedattn/coordinator/task_board.h"

#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace fedattn::coordinator {
namespace {

v1::Task MakeTask(const std::string& job) {
  v1::Task task;
  task.mutable_round()->set_job_id(job);
  task.set_kind("train");
  return task;
}

TEST(TaskBoardTest, HandsOutTasksInOrderPerSite) {
  TaskBoard board;
  board.Post("a", MakeTask("j1"));
  board.Post("a", MakeTask("j2"));
  board.Post("b", MakeTask("j3"));
  EXPECT_EQ(board.Wait("a", absl::Now())->round().job_id(), "j1");
  EXPECT_EQ(board.Wait("a", absl::Now())->round().job_id(), "j2");
  EXPECT_FALSE(board.Wait("a", absl::Now()).has_value());
  EXPECT_EQ(board.Wait("b", absl::Now())->round().job_id(), "j3");
}

TEST(TaskBoardTest, WaitWakesWhenATaskArrives) {
  TaskBoard board;
  std::thread poster([&] {
    absl::SleepFor(absl::Milliseconds(50));
    board.Post("a", MakeTask("late"));
  });
  auto task = board.Wait("a", absl::Now() + absl::Seconds(10));
  poster.join();
  ASSERT_TRUE(task.has_value());
  EXPECT_EQ(task->round().job_id(), "late");
}

TEST(TaskBoardTest, CloseReleasesWaitersAndClearDrops) {
  TaskBoard board;
  board.Post("a", MakeTask("x"));
  board.Clear("a");
  EXPECT_FALSE(board.Wait("a", absl::Now()).has_value());
  std::thread closer([&] {
    absl::SleepFor(absl::Milliseconds(50));
    board.Close();
  });
  const absl::Time start = absl::Now();
  EXPECT_FALSE(board.Wait("a", absl::Now() + absl::Seconds(30)).has_value());
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  closer.join();
}

TEST(TaskBoardTest, PostIfEmptyNeverQueuesASecondTask) {
  TaskBoard board;
  EXPECT_TRUE(board.PostIfEmpty("a", MakeTask("first")));
  EXPECT_FALSE(board.PostIfEmpty("a", MakeTask("second")));
  EXPECT_TRUE(board.PostIfEmpty("b", MakeTask("other site")));
  EXPECT_EQ(board.Wait("a", absl::Now())->round().job_id(), "first");
  EXPECT_FALSE(board.Wait("a", absl::Now()).has_value());
  // Taken: the site's queue is empty again.
  EXPECT_TRUE(board.PostIfEmpty("a", MakeTask("again")));
  EXPECT_EQ(board.Wait("a", absl::Now())->round().job_id(), "again");
}

}  // namespace
}  // namespace fedattn::coordinator
