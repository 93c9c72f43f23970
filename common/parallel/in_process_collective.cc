#include "fedattn/parallel/in_process_collective.h"

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace fedattn::parallel {
namespace {

// One rendezvous per operation: every rank deposits its contribution; when all have, each
// reads what it needs; the last to leave opens the next operation.
class Group final : public InProcessGroup, public std::enable_shared_from_this<Group> {
 public:
  Group(int size, absl::Duration timeout) : size_(size), timeout_(timeout), inputs_(size) {}
  std::unique_ptr<Collective> Rank(int rank) override;

  using Consume = std::function<void(const std::vector<std::vector<uint8_t>>& inputs)>;
  absl::Status Exchange(int rank, const std::string& op, std::vector<uint8_t> input, const Consume& consume) {
    absl::MutexLock lock(&mu_);
    const absl::Time deadline = absl::Now() + timeout_;
    auto open = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return broken_ || !draining_; };
    if (!mu_.AwaitWithDeadline(absl::Condition(&open), deadline)) return Break(op, "waiting for the previous operation");
    if (broken_) return Broken(op);
    if (arrived_ == 0) {
      op_ = op;
    } else if (op_ != op) {
      broken_ = true;
      failure_ = absl::InternalError(absl::StrCat("rank ", rank, " called ", op, " while other ranks called ", op_));
      return failure_;
    }
    inputs_[rank] = std::move(input);
    if (++arrived_ == size_) draining_ = true;
    auto all_in = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return broken_ || draining_; };
    if (!mu_.AwaitWithDeadline(absl::Condition(&all_in), deadline)) return Break(op, "waiting for every rank");
    if (broken_) return failure_;  // the operation this rank is in broke
    consume(inputs_);
    if (++departed_ == size_) arrived_ = departed_ = 0, draining_ = false;
    return absl::OkStatus();
  }

  int size() const { return size_; }
  bool broken() const {
    absl::MutexLock lock(&mu_);
    return broken_;
  }

 private:
  absl::Status Break(const std::string& op, const char* what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (broken_) return failure_;
    broken_ = true;
    failure_ = absl::DeadlineExceededError(absl::StrCat(op, ": no progress for ", absl::FormatDuration(timeout_), " ",
                                                        what, " (a rank died or stalled)"));
    return failure_;
  }
  absl::Status Broken(const std::string& op) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return absl::AbortedError(
        absl::StrCat(op, ": the collective group is broken (an earlier operation failed: ", failure_.message(), ")"));
  }

  const int size_;
  const absl::Duration timeout_;
  mutable absl::Mutex mu_;
  std::vector<std::vector<uint8_t>> inputs_ ABSL_GUARDED_BY(mu_);
  std::string op_ ABSL_GUARDED_BY(mu_);
  int arrived_ ABSL_GUARDED_BY(mu_) = 0;
  int departed_ ABSL_GUARDED_BY(mu_) = 0;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);  // why the group broke
};

std::vector<uint8_t> BytesOf(const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  return std::vector<uint8_t>(p, p + size);
}

class RankCollective final : public Collective {
 public:
  RankCollective(std::shared_ptr<Group> group, int rank) : group_(std::move(group)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return group_->size(); }
  int local_rank() const override { return rank_; }
  std::string_view backend() const override { return "in-process"; }
  bool broken() const override { return group_->broken(); }

  absl::Status Broadcast(std::span<uint8_t> bytes, int root) override {
    if (root < 0 || root >= size()) return absl::InvalidArgumentError(absl::StrCat("broadcast root ", root));
    return group_->Exchange(rank_, absl::StrCat("Broadcast(", bytes.size(), " bytes, root ", root, ")"),
                            rank_ == root ? BytesOf(bytes.data(), bytes.size()) : std::vector<uint8_t>(),
                            [&](const auto& inputs) {
                              if (rank_ != root) std::memcpy(bytes.data(), inputs[root].data(), bytes.size());
                            });
  }
  absl::Status AllGather(std::span<const uint8_t> mine, std::span<uint8_t> all) override {
    if (all.size() != mine.size() * static_cast<size_t>(size())) {
      return absl::InvalidArgumentError("AllGather: output size is not size() * input size");
    }
    return group_->Exchange(rank_, absl::StrCat("AllGather(", mine.size(), " bytes)"), BytesOf(mine.data(), mine.size()),
                            [&](const auto& inputs) {
                              for (size_t r = 0; r < inputs.size(); ++r) {
                                std::memcpy(all.data() + r * mine.size(), inputs[r].data(), mine.size());
                              }
                            });
  }
  absl::Status BroadcastFloats(std::span<float> values, int root) override {
    return Broadcast(std::span<uint8_t>(reinterpret_cast<uint8_t*>(values.data()), values.size_bytes()), root);
  }
  absl::Status AllReduceSum(std::span<float> values) override {
    return group_->Exchange(rank_, absl::StrCat("AllReduceSum(", values.size(), " floats)"),
                            BytesOf(values.data(), values.size_bytes()), [&](const auto& inputs) {
                              // In rank order, on every rank: the same float result everywhere.
                              for (size_t i = 0; i < values.size(); ++i) {
                                float sum = 0;
                                for (const auto& input : inputs) sum += reinterpret_cast<const float*>(input.data())[i];
                                values[i] = sum;
                              }
                            });
  }
  absl::Status Barrier() override {
    return group_->Exchange(rank_, "Barrier", {}, [](const auto&) {});
  }

 private:
  std::shared_ptr<Group> group_;
  int rank_;
};

std::unique_ptr<Collective> Group::Rank(int rank) {
  return std::make_unique<RankCollective>(shared_from_this(), rank);
}

}  // namespace

std::shared_ptr<InProcessGroup> InProcessGroup::Create(int size, absl::Duration timeout) {
  return std::make_shared<Group>(size, timeout);
}

}  // namespace fedattn::parallel
