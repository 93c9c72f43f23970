#include "fedattn/models/data_parallel.h"

#include <functional>
#include <thread>
#include <vector>

#include <torch/torch.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "fedattn/models/trainer.h"
#include "fedattn/parallel/in_process_collective.h"

namespace fedattn::models {
namespace {

using ::testing::HasSubstr;

Batch LinearTask(int64_t n) {
  torch::manual_seed(3);
  Batch batch;
  batch.numeric = torch::randn({n, 3});
  batch.labels = (batch.numeric.select(1, 0) + batch.numeric.select(1, 1) > 0).to(torch::kInt64);
  return batch;
}

ModelOptions TinyTabular() {
  ModelOptions options;
  options.kind(ModelKind::kTabularTransformer);
  options.tabular().num_numeric(3).encoder(
      EncoderOptions().d_model(8).num_heads(2).ffn_dim(16).num_layers(1).norm_first(true).dropout(0).attention_dropout(0));
  return options;
}

// Adam's eps is raised from 1e-8: parameters whose exact gradient is 0 (the attention key bias:
// softmax ignores it) get float-rounding gradients of ~1e-10 whose sign depends on summation
// order, and Adam would turn each into a full step of size lr in an arbitrary direction.
TrainerOptions Quick() {
  return TrainerOptions().epochs(2).batch_size(16).log_every(0).threads(1).max_grad_norm(0.5).seed(11).optimizer(
      AdamWOptions().lr(1e-2).eps(1e-4));
}

std::unique_ptr<Trainer> MakeTrainer(const TrainerOptions& options, uint64_t model_seed) {
  auto model = BuildModel(TinyTabular(), model_seed);
  EXPECT_TRUE(model.ok()) << model.status();
  auto trainer = Trainer::Create(*model, options, nullptr);
  EXPECT_TRUE(trainer.ok()) << trainer.status();
  return std::move(*trainer);
}

struct RankOutcome {
  absl::StatusOr<TrainResult> result = absl::UnknownError("not run");
  torch::Tensor params;
};

// Trains on `ranks` threads over an in-process group. Rank r's model starts from seed 100 + r, so
// the result only matches one process if the model broadcast works. `setup` may alter a rank.
std::vector<RankOutcome> TrainParallel(int ranks, const TrainerOptions& options, const Batch& data,
                                       const std::optional<DpSgdOptions>& dp,
                                       const std::function<void(int, Trainer&, Batch&)>& setup = nullptr,
                                       absl::Duration timeout = absl::Seconds(60)) {
  std::shared_ptr<parallel::InProcessGroup> group = parallel::InProcessGroup::Create(ranks, timeout);
  std::vector<std::unique_ptr<parallel::Collective>> collectives;
  std::vector<std::unique_ptr<Trainer>> trainers;
  std::vector<Batch> datasets(ranks, data);
  for (int r = 0; r < ranks; ++r) {
    collectives.push_back(group->Rank(r));
    trainers.push_back(MakeTrainer(options, 100 + r));
    if (dp) {
      EXPECT_TRUE(trainers[r]->EnableDpSgd(*dp).ok());
    }
    trainers[r]->set_collective(collectives[r].get());
    if (setup) setup(r, *trainers[r], datasets[r]);
  }
  std::vector<RankOutcome> out(ranks);
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r] {
      if (absl::Status synced = trainers[r]->SyncModel(); !synced.ok()) {
        out[r].result = synced;
        return;
      }
      out[r].result = trainers[r]->Fit(datasets[r], Batch());
      out[r].params = trainers[r]->flat().params().clone();
    });
  }
  for (std::thread& t : threads) t.join();
  return out;
}

TEST(ShardOfTest, ContiguousBalancedPartition) {
  for (int64_t total : {0, 1, 5, 16, 17}) {
    for (int size : {1, 2, 3, 4}) {
      int64_t next = 0;
      for (int rank = 0; rank < size; ++rank) {
        const auto [first, count] = ShardOf(total, rank, size);
        EXPECT_EQ(first, next);
        EXPECT_LE(count, total / size + 1);
        EXPECT_GE(count, total / size);
        next = first + count;
      }
      EXPECT_EQ(next, total);
    }
  }
}

TEST(DataParallelTest, TwoRanksTakeTheSameStepsAsOneProcess) {
  const Batch data = LinearTask(70);  // 16-row batches: the last one (6 rows) splits 3 / 3
  auto single = MakeTrainer(Quick(), 100);
  ASSERT_TRUE(single->Fit(data, Batch()).ok());
  for (int ranks : {2, 3}) {
    std::vector<RankOutcome> out = TrainParallel(ranks, Quick(), data, std::nullopt);
    for (int r = 0; r < ranks; ++r) {
      ASSERT_TRUE(out[r].result.ok()) << out[r].result.status();
      EXPECT_EQ(out[r].result->steps, 10);
      EXPECT_TRUE(torch::allclose(out[r].params, single->flat().params(), 1e-4, 1e-5))
          << ranks << " ranks, rank " << r << ": max difference "
          << (out[r].params - single->flat().params()).abs().max().item<float>();
      // Every rank ends with the same model.
      EXPECT_TRUE(torch::equal(out[r].params, out[0].params));
    }
  }
}

TEST(DataParallelTest, DpSgdWithTheSameSeedMatchesOneProcess) {
  const Batch data = LinearTask(60);
  const DpSgdOptions dp = DpSgdOptions().noise_multiplier(0.8).max_grad_norm(0.3).expected_batch_size(12).steps(8).seed(
      std::optional<uint64_t>(42));
  auto single = MakeTrainer(Quick(), 100);
  ASSERT_TRUE(single->EnableDpSgd(dp).ok());
  absl::StatusOr<TrainResult> reference = single->Fit(data, Batch());
  ASSERT_TRUE(reference.ok()) << reference.status();
  std::vector<RankOutcome> out = TrainParallel(2, Quick(), data, dp);
  for (int r = 0; r < 2; ++r) {
    ASSERT_TRUE(out[r].result.ok()) << out[r].result.status();
    const DpSgdSummary& summary = *out[r].result->dp_sgd;
    // The accountant's inputs are the site-level ones, and the sample the same.
    EXPECT_DOUBLE_EQ(summary.sampling_rate, reference->dp_sgd->sampling_rate);
    EXPECT_EQ(summary.steps, 8);
    EXPECT_EQ(summary.sampled_examples, reference->dp_sgd->sampled_examples);
    EXPECT_DOUBLE_EQ(summary.clipped_fraction, reference->dp_sgd->clipped_fraction);
    EXPECT_TRUE(torch::allclose(out[r].params, single->flat().params(), 1e-4, 1e-5))
        << "rank " << r << ": max difference " << (out[r].params - single->flat().params()).abs().max().item<float>();
  }
}

TEST(DataParallelTest, AFailingRankFailsEveryRankWithItsError) {
  const Batch data = LinearTask(40);
  std::vector<RankOutcome> out = TrainParallel(2, Quick(), data, std::nullopt, [](int rank, Trainer&, Batch& batch) {
    if (rank == 1) batch.labels = batch.labels + 7;  // class 7 of 2: cross-entropy throws on rank 1 only
  });
  for (int r = 0; r < 2; ++r) {
    ASSERT_FALSE(out[r].result.ok());
    EXPECT_THAT(out[r].result.status().message(), HasSubstr("rank 1: training step"));
  }
}

TEST(DataParallelTest, ADeadRankEndsTrainingWithADeadlineOnTheOthers) {
  const Batch data = LinearTask(40);
  std::shared_ptr<parallel::InProcessGroup> group = parallel::InProcessGroup::Create(2, absl::Milliseconds(500));
  std::unique_ptr<parallel::Collective> rank0 = group->Rank(0), rank1 = group->Rank(1);
  auto trainer = MakeTrainer(Quick(), 100);
  trainer->set_collective(rank0.get());
  // Rank 1 syncs the model, then "dies" before the first step.
  std::thread dead([&] {
    auto other = MakeTrainer(Quick(), 101);
    other->set_collective(rank1.get());
    EXPECT_TRUE(other->SyncModel().ok());
  });
  ASSERT_TRUE(trainer->SyncModel().ok());
  dead.join();
  absl::StatusOr<TrainResult> result = trainer->Fit(data, Batch());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(result.status().message(), HasSubstr("a rank died or stalled"));
}

}  // namespace
}  // namespace fedattn::models
