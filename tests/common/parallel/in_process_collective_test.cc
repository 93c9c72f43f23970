#include "fedattn/parallel/in_process_collective.h"

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedattn::parallel {
namespace {

using ::testing::HasSubstr;

// Runs body(collective) on `size` threads, one rank each, and returns what each returned.
std::vector<absl::Status> RunRanks(int size, const std::function<absl::Status(Collective&)>& body,
                                   absl::Duration timeout = absl::Seconds(20)) {
  std::shared_ptr<InProcessGroup> group = InProcessGroup::Create(size, timeout);
  std::vector<std::unique_ptr<Collective>> ranks;
  for (int r = 0; r < size; ++r) ranks.push_back(group->Rank(r));
  std::vector<absl::Status> results(size);
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r) threads.emplace_back([&, r] { results[r] = body(*ranks[r]); });
  for (std::thread& t : threads) t.join();
  return results;
}

TEST(InProcessCollectiveTest, AllReduceSumsInEveryRankAndRepeats) {
  std::vector<std::vector<float>> out(4);
  const auto results = RunRanks(4, [&](Collective& c) -> absl::Status {
    EXPECT_EQ(c.size(), 4);
    EXPECT_EQ(c.backend(), "in-process");
    std::vector<float> values = {1.0f * c.rank(), 1.0f, -2.0f * c.rank()};
    for (int round = 0; round < 3; ++round) {
      if (absl::Status s = c.AllReduceSum(values); !s.ok()) return s;
    }
    out[c.rank()] = values;
    return absl::OkStatus();
  });
  for (int r = 0; r < 4; ++r) {
    ASSERT_TRUE(results[r].ok()) << results[r];
    // Three rounds: each multiplies by the rank count.
    EXPECT_THAT(out[r], ::testing::ElementsAre(6 * 16, 64, -12 * 16));
  }
}

TEST(InProcessCollectiveTest, BroadcastAllGatherAndStrings) {
  std::vector<std::string> strings(3);
  std::vector<std::vector<uint8_t>> gathered(3);
  const auto results = RunRanks(3, [&](Collective& c) -> absl::Status {
    std::vector<float> weights = {c.rank() == 1 ? 7.0f : 0.0f, c.rank() == 1 ? 8.0f : 0.0f};
    if (absl::Status s = c.BroadcastFloats(weights, 1); !s.ok()) return s;
    EXPECT_THAT(weights, ::testing::ElementsAre(7, 8));
    std::string text = c.rank() == 2 ? std::string(100000, 'x') + "end" : "";
    if (absl::Status s = BroadcastString(c, &text, 2); !s.ok()) return s;
    strings[c.rank()] = text;
    const uint8_t mine = static_cast<uint8_t>(10 + c.rank());
    gathered[c.rank()].resize(3);
    if (absl::Status s = c.AllGather(std::span<const uint8_t>(&mine, 1), gathered[c.rank()]); !s.ok()) return s;
    return c.Barrier();
  });
  for (int r = 0; r < 3; ++r) {
    ASSERT_TRUE(results[r].ok()) << results[r];
    EXPECT_EQ(strings[r].size(), 100003u);
    EXPECT_THAT(gathered[r], ::testing::ElementsAre(10, 11, 12));
  }
}

TEST(InProcessCollectiveTest, BucketedAllReduceEqualsOneShot) {
  const auto results = RunRanks(2, [&](Collective& c) -> absl::Status {
    std::vector<float> values(10);
    for (int i = 0; i < 10; ++i) values[i] = static_cast<float>(i * (c.rank() + 1));
    if (absl::Status s = AllReduceSumBucketed(c, values, 3); !s.ok()) return s;
    for (int i = 0; i < 10; ++i) EXPECT_EQ(values[i], 3.0f * i);
    EXPECT_FALSE(AllReduceSumBucketed(c, values, 0).ok());
    return absl::OkStatus();
  });
  for (const absl::Status& s : results) EXPECT_TRUE(s.ok()) << s;
}

TEST(InProcessCollectiveTest, AgreeOnStatusGivesEveryRankTheLowestFailingRanksError) {
  const auto ok = RunRanks(3, [](Collective& c) { return AgreeOnStatus(c, absl::OkStatus()); });
  for (const absl::Status& s : ok) EXPECT_TRUE(s.ok()) << s;
  const auto failed = RunRanks(3, [](Collective& c) {
    absl::Status local = absl::OkStatus();
    if (c.rank() == 1) local = absl::NotFoundError("data/site.csv: no such file");
    if (c.rank() == 2) local = absl::InternalError("out of memory");
    return AgreeOnStatus(c, local);
  });
  for (const absl::Status& s : failed) {
    EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(s.message(), "rank 1: data/site.csv: no such file");
  }
}

TEST(InProcessCollectiveTest, ADeadRankMakesTheOthersFailWithinTheDeadlineThenStayBroken) {
  const auto results = RunRanks(
      3,
      [](Collective& c) -> absl::Status {
        if (c.rank() == 2) return absl::OkStatus();  // "dies": never joins the all-reduce
        std::vector<float> values(4, 1.0f);
        absl::Status first = c.AllReduceSum(values);
        EXPECT_EQ(first.code(), absl::StatusCode::kDeadlineExceeded) << first;
        EXPECT_THAT(first.message(), HasSubstr("a rank died or stalled"));
        EXPECT_TRUE(c.broken());
        return c.Barrier();
      },
      absl::Milliseconds(300));
  EXPECT_EQ(results[0].code(), absl::StatusCode::kAborted);
  EXPECT_THAT(results[0].message(), HasSubstr("broken"));
  EXPECT_EQ(results[1].code(), absl::StatusCode::kAborted);
}

TEST(InProcessCollectiveTest, MismatchedOperationsFail) {
  const auto results = RunRanks(
      2,
      [](Collective& c) -> absl::Status {
        if (c.rank() == 0) return c.Barrier();
        std::vector<float> values(2);
        return c.AllReduceSum(values);
      },
      absl::Milliseconds(500));
  // Whichever rank arrives second sees the mismatch; the other, waiting, gets the same error.
  for (const absl::Status& s : results) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
    EXPECT_THAT(s.message(), HasSubstr("while other ranks called"));
  }
}

TEST(SingleProcessCollectiveTest, EveryOperationIsANoOp) {
  SingleProcessCollective c;
  EXPECT_EQ(c.size(), 1);
  std::vector<float> values = {1, 2};
  EXPECT_TRUE(c.AllReduceSum(values).ok());
  EXPECT_TRUE(AllReduceSumBucketed(c, values, 1).ok());
  EXPECT_THAT(values, ::testing::ElementsAre(1, 2));
  std::string text = "x";
  EXPECT_TRUE(BroadcastString(c, &text, 0).ok());
  EXPECT_EQ(text, "x");
  EXPECT_EQ(AgreeOnStatus(c, absl::NotFoundError("n")).code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace fedattn::parallel
