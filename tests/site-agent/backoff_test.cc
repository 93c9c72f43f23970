#include "fedattn/agent/backoff.h"

#include "gtest/gtest.h"

namespace fedattn::agent {
namespace {

TEST(BackoffTest, DoublesWithJitterUpToTheCapAndResets) {
  Backoff backoff(absl::Milliseconds(100), absl::Seconds(1), /*seed=*/7);
  const absl::Duration first = backoff.Next();
  EXPECT_GE(first, absl::Milliseconds(80));
  EXPECT_LE(first, absl::Milliseconds(120));
  const absl::Duration second = backoff.Next();
  EXPECT_GE(second, absl::Milliseconds(160));
  EXPECT_LE(second, absl::Milliseconds(240));
  for (int i = 0; i < 10; ++i) EXPECT_LE(backoff.Next(), absl::Seconds(1));
  backoff.Reset();
  EXPECT_LE(backoff.Next(), absl::Milliseconds(120));
}

TEST(BackoffTest, SameSeedSameWaits) {
  Backoff a(absl::Milliseconds(100), absl::Seconds(5), 42);
  Backoff b(absl::Milliseconds(100), absl::Seconds(5), 42);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(a.Next(), b.Next());
}

}  // namespace
}  // namespace fedattn::agent
