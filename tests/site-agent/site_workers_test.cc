#include "fedattn/agent/site_workers.h"

#include <fstream>
#include <thread>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "fedattn/models/job_spec.h"
#include "fedattn/parallel/in_process_collective.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/temp_dir.h"

namespace fedattn::agent {
namespace {

using ::testing::HasSubstr;

const std::filesystem::path kSource = FEDATTN_SOURCE_DIR;

class SiteWorkersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::filesystem::path path = dir_ / "job.yaml";
    std::ofstream(path) << absl::StrCat(
        "job:\n  name: tiny\n  seed: 1\n",
        "  model:\n    kind: tabular_transformer\n    task: classification\n    d_model: 8\n    num_layers: 1\n"
        "    num_heads: 2\n    ffn_dim: 16\n    dropout: 0.0\n    attention_dropout: 0.0\n    norm: pre\n",
        "  data:\n    kind: tabular\n    schema: ", (kSource / "configs/data/wdbc.schema.yaml").string(),
        "\n    validation_fraction: 0.2\n  rounds: 1\n  strategy:\n    name: fedavg\n",
        "  local:\n    epochs: 1\n    batch_size: 32\n    lr: 1.0e-3\n    threads: 1\n");
    auto text = models::ResolveJobFile(path);
    ASSERT_TRUE(text.ok()) << text.status();
    job_text_ = *text;
    auto job = models::ParseJobSpec(job_text_, "tiny");
    ASSERT_TRUE(job.ok()) << job.status();
    job_ = *job;
    site_.data.path = kSource / "data/wdbc.csv";
    auto data = LoadLocalDataset(site_.data, job_);
    ASSERT_TRUE(data.ok()) << data.status();
    data_ = *data;
    // DP-SGD with a fixed seed on rank 0 (sampling and noise): the parallel run repeats the single one.
    options_.seed = 7;
    options_.evaluate = true;
    options_.dp = models::DpSgdOptions().noise_multiplier(1.0).max_grad_norm(1.0).sampling_rate(0.1).steps(6).seed(
        std::optional<uint64_t>(3));
  }

  absl::StatusOr<LocalTrainingResult> Train(parallel::Collective* collective) {
    auto model = BuildJobModel(job_);
    if (!model.ok()) return model.status();
    LocalTrainingOptions options = options_;
    options.collective = collective;
    return TrainLocally(job_, *model, data_, options);
  }

  testing::TempDir dir_;
  std::string job_text_;
  models::JobSpec job_;
  AgentOptions site_;
  LocalDataset data_;
  LocalTrainingOptions options_;
};

TEST_F(SiteWorkersTest, AWorkerTrainsItsShareAndTheLeaderGetsTheSingleProcessUpdate) {
  absl::StatusOr<LocalTrainingResult> single = Train(nullptr);
  ASSERT_TRUE(single.ok()) << single.status();

  std::shared_ptr<parallel::InProcessGroup> group = parallel::InProcessGroup::Create(2, absl::Seconds(60));
  std::unique_ptr<parallel::Collective> leader = group->Rank(0), worker = group->Rank(1);
  absl::Status served = absl::UnknownError("not run");
  std::thread worker_thread([&] { served = RunSiteWorker(*worker, site_); });
  absl::StatusOr<LocalTrainingResult> parallel = absl::UnknownError("not run");
  {
    SiteWorkers workers(leader.get(), absl::Milliseconds(20));
    ASSERT_TRUE(workers.BeginTrain(job_text_, options_, data_.train.size()).ok());
    parallel = Train(leader.get());
    workers.EndTrain();
  }  // stops the worker
  worker_thread.join();
  EXPECT_TRUE(served.ok()) << served;
  ASSERT_TRUE(parallel.ok()) << parallel.status();
  EXPECT_EQ(parallel->steps, 6);
  EXPECT_EQ(parallel->num_examples, single->num_examples);
  EXPECT_EQ(parallel->dp->sampled_examples, single->dp->sampled_examples);
  ASSERT_EQ(parallel->validation_metrics.size(), single->validation_metrics.size());  // rank 0 evaluates
  EXPECT_NEAR(parallel->validation_metrics.at("loss"), single->validation_metrics.at("loss"), 1e-4);
  ASSERT_EQ(parallel->update.size(), single->update.size());
  for (size_t i = 0; i < single->update.size(); ++i) {
    ASSERT_NEAR(parallel->update[i], single->update[i], 1e-5) << i;
  }
}

TEST_F(SiteWorkersTest, AWorkersErrorFailsTheLeadersTaskAndTheWorkerWaitsForTheNext) {
  AgentOptions broken = site_;
  broken.data.path = dir_ / "missing.csv";
  std::shared_ptr<parallel::InProcessGroup> group = parallel::InProcessGroup::Create(2, absl::Seconds(60));
  std::unique_ptr<parallel::Collective> leader = group->Rank(0), worker = group->Rank(1);
  absl::Status served = absl::UnknownError("not run");
  std::thread worker_thread([&] { served = RunSiteWorker(*worker, broken); });
  absl::StatusOr<LocalTrainingResult> first = absl::UnknownError("not run");
  {
    SiteWorkers workers(leader.get(), absl::Milliseconds(20));
    ASSERT_TRUE(workers.BeginTrain(job_text_, options_, data_.train.size()).ok());
    first = Train(leader.get());
    workers.EndTrain();
    // The group still works: a second task fails the same way instead of hanging.
    ASSERT_TRUE(workers.BeginTrain(job_text_, options_, data_.train.size()).ok());
    EXPECT_FALSE(Train(leader.get()).ok());
    workers.EndTrain();
  }
  worker_thread.join();
  EXPECT_TRUE(served.ok()) << served;
  ASSERT_FALSE(first.ok());
  EXPECT_THAT(first.status().message(), HasSubstr("rank 1: "));
  EXPECT_THAT(first.status().message(), HasSubstr("missing.csv"));
}

TEST_F(SiteWorkersTest, AWorkerWithDifferentDataRefusesToTrain) {
  std::shared_ptr<parallel::InProcessGroup> group = parallel::InProcessGroup::Create(2, absl::Seconds(60));
  std::unique_ptr<parallel::Collective> leader = group->Rank(0), worker = group->Rank(1);
  std::thread worker_thread([&] { EXPECT_TRUE(RunSiteWorker(*worker, site_).ok()); });
  SiteWorkers workers(leader.get(), absl::Milliseconds(20));
  ASSERT_TRUE(workers.BeginTrain(job_text_, options_, data_.train.size() + 1).ok());
  absl::StatusOr<LocalTrainingResult> trained = Train(leader.get());
  workers.EndTrain();
  workers.Stop();
  worker_thread.join();
  ASSERT_FALSE(trained.ok());
  EXPECT_THAT(trained.status().message(), HasSubstr("every rank must read the same data"));
}

TEST_F(SiteWorkersTest, HeartbeatsKeepAnIdleWorkerWaitingAndASilentLeaderEndsIt) {
  {
    std::shared_ptr<parallel::InProcessGroup> group = parallel::InProcessGroup::Create(2, absl::Milliseconds(400));
    std::unique_ptr<parallel::Collective> leader = group->Rank(0), worker = group->Rank(1);
    absl::Status served = absl::UnknownError("not run");
    std::thread worker_thread([&] { served = RunSiteWorker(*worker, site_); });
    {
      SiteWorkers workers(leader.get(), absl::Milliseconds(50));
      absl::SleepFor(absl::Milliseconds(1200));  // three deadlines' worth of idling
    }
    worker_thread.join();
    EXPECT_TRUE(served.ok()) << served;
  }
  std::shared_ptr<parallel::InProcessGroup> group = parallel::InProcessGroup::Create(2, absl::Milliseconds(300));
  std::unique_ptr<parallel::Collective> worker = group->Rank(1);
  const absl::Status served = RunSiteWorker(*worker, site_);  // no leader at all
  EXPECT_EQ(served.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(served.message(), HasSubstr("lost rank 0"));
}

}  // namespace
}  // namespace fedattn::agent
