#include "fedattn/coordinator/job_store.h"

#include "gtest/gtest.h"
#include "util/temp_dir.h"

namespace fedattn::coordinator {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = JobStore::Open(dir_.path());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    auto id = store_->CreateJob("tiny", "job: {}\n", 2, "operator", kT0);
    ASSERT_TRUE(id.ok()) << id.status();
    job_ = *id;
  }

  testing::TempDir dir_;
  std::unique_ptr<JobStore> store_;
  std::string job_;
};

TEST_F(JobStoreTest, CommitsRoundsInOrderAndCompletesTheJob) {
  ASSERT_TRUE(store_->StartRound(job_, 1, kT0).ok());
  ASSERT_TRUE(store_->PutRoundSite(job_, 1, {"hospital-a", "contributed", "", 10, 0.5, 0.5}).ok());
  ASSERT_TRUE(store_->CommitRound(job_, 1, {{"loss", 0.7}}, {{"accuracy", 0.8}}, "aa", kT0).ok());
  EXPECT_EQ(store_->GetJob(job_)->committed_rounds, 1);
  EXPECT_FALSE(store_->GetJob(job_)->Finished());
  ASSERT_TRUE(store_->StartRound(job_, 2, kT0 + absl::Seconds(1)).ok());
  ASSERT_TRUE(store_->CommitRound(job_, 2, {}, {}, "bb", kT0 + absl::Seconds(2)).ok());
  auto job = store_->GetJob(job_);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state, "completed");
  EXPECT_EQ(job->committed_rounds, 2);
  auto rounds = store_->Rounds(job_);
  ASSERT_TRUE(rounds.ok());
  ASSERT_EQ(rounds->size(), 2u);
  EXPECT_EQ((*rounds)[0].model_sha256, "aa");
  EXPECT_EQ((*rounds)[0].sites.size(), 1u);
  EXPECT_EQ((*rounds)[1].model_sha256, "bb");
}

TEST_F(JobStoreTest, AFailedRoundStartsAgainClean) {
  ASSERT_TRUE(store_->StartRound(job_, 1, kT0).ok());
  ASSERT_TRUE(store_->PutRoundSite(job_, 1, {"hospital-a", "dropped", "missed the deadline", 0, 0, 0}).ok());
  ASSERT_TRUE(store_->SetRoundState(job_, 1, "failed", "too few sites", kT0).ok());
  ASSERT_TRUE(store_->StartRound(job_, 1, kT0 + absl::Seconds(5)).ok());
  auto rounds = store_->Rounds(job_);
  ASSERT_TRUE(rounds.ok());
  ASSERT_EQ(rounds->size(), 1u);
  EXPECT_EQ((*rounds)[0].state, "training");
  EXPECT_EQ((*rounds)[0].error, "");
  EXPECT_TRUE((*rounds)[0].sites.empty());
  EXPECT_EQ((*rounds)[0].started, kT0 + absl::Seconds(5));
}

TEST_F(JobStoreTest, ACommittedRoundCannotStartAgain) {
  ASSERT_TRUE(store_->StartRound(job_, 1, kT0).ok());
  ASSERT_TRUE(store_->PutRoundSite(job_, 1, {"hospital-a", "contributed", "", 10, 0.5, 0.5}).ok());
  ASSERT_TRUE(store_->CommitRound(job_, 1, {}, {{"accuracy", 0.8}}, "aa", kT0).ok());
  const absl::Status again = store_->StartRound(job_, 1, kT0 + absl::Seconds(1));
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(again.message().find("round 1 of job '" + job_ + "' is already committed"), std::string::npos)
      << again.message();
  // Nothing of the committed round is lost.
  auto rounds = store_->Rounds(job_);
  ASSERT_TRUE(rounds.ok());
  ASSERT_EQ(rounds->size(), 1u);
  EXPECT_EQ((*rounds)[0].state, "committed");
  EXPECT_EQ((*rounds)[0].model_sha256, "aa");
  EXPECT_EQ((*rounds)[0].sites.size(), 1u);
  EXPECT_EQ((*rounds)[0].validation_metrics.at("accuracy"), 0.8);
}

TEST_F(JobStoreTest, StatePersistsAcrossReopen) {
  ASSERT_TRUE(store_->StartRound(job_, 1, kT0).ok());
  ASSERT_TRUE(store_->CommitRound(job_, 1, {}, {}, "aa", kT0).ok());
  store_.reset();
  auto reopened = JobStore::Open(dir_.path());
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  auto job = (*reopened)->GetJob(job_);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->committed_rounds, 1);
  EXPECT_EQ(job->state, "queued");
  EXPECT_EQ((*reopened)->StartRound(job_, 1, kT0).code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace fedattn::coordinator
