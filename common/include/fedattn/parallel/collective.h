// Intra-site collectives: the ranks of one site's agent (one process per GPU or per CPU share,
// started by mpirun) sum gradients and share the model through this interface. Backends: MPI
// (CPU builds), NCCL (CUDA builds; fedattn/agent/site_collective.h makes both), a single rank
// (no mpirun: every operation is a no-op), and an in-process group of threads for tests
// (in_process_collective.h). Shaped after gloo's context/transport split.
//
// Failure model: a collective either completes on every rank or returns an error on every
// surviving rank within the group's deadline. A rank that dies mid-operation leaves the others
// waiting, so every backend bounds the wait (DeadlineExceeded, naming the operation); an error
// from MPI or NCCL carries the library's own text. After any error the group is broken():
// peers may be inside an operation this rank abandoned, so every later call fails at once, and
// the process should report and exit (docs/multi-gpu.md).
//
// Thread safety: one thread at a time per Collective (callers serialise).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace fedattn::parallel {

class Collective {
 public:
  virtual ~Collective() = default;

  virtual int rank() const = 0;        // 0 .. size() - 1; rank 0 is the site's leader
  virtual int size() const = 0;
  virtual int local_rank() const = 0;  // rank among the processes on this machine (GPU index)
  virtual std::string_view backend() const = 0;  // "single", "mpi", "nccl", "in-process"
  // True when AllReduceSum and BroadcastFloats take device (CUDA) memory: NCCL. Bytes are always
  // host memory.
  virtual bool device_memory() const { return false; }
  virtual bool broken() const = 0;

  // Copies `bytes` of rank `root` into `bytes` of every rank (same length on all ranks).
  [[nodiscard]] virtual absl::Status Broadcast(std::span<uint8_t> bytes, int root) = 0;
  // all[r * mine.size() .. ) = rank r's `mine`, on every rank. REQUIRES: all.size() == size() *
  // mine.size(), the same mine.size() on all ranks.
  [[nodiscard]] virtual absl::Status AllGather(std::span<const uint8_t> mine, std::span<uint8_t> all) = 0;
  // Float buffers (host, or device when device_memory()).
  [[nodiscard]] virtual absl::Status BroadcastFloats(std::span<float> values, int root) = 0;
  // values = the element-wise sum of every rank's values, in place, on every rank.
  [[nodiscard]] virtual absl::Status AllReduceSum(std::span<float> values) = 0;
  [[nodiscard]] virtual absl::Status Barrier() = 0;
};

// One process: size 1, every operation returns OK without touching the data.
class SingleProcessCollective final : public Collective {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  std::string_view backend() const override { return "single"; }
  bool broken() const override { return false; }
  absl::Status Broadcast(std::span<uint8_t>, int) override { return absl::OkStatus(); }
  absl::Status AllGather(std::span<const uint8_t> mine, std::span<uint8_t> all) override;
  absl::Status BroadcastFloats(std::span<float>, int) override { return absl::OkStatus(); }
  absl::Status AllReduceSum(std::span<float>) override { return absl::OkStatus(); }
  absl::Status Barrier() override { return absl::OkStatus(); }
};

// Sum over ranks in buckets of at most `bucket_floats` elements, one operation per bucket (the
// bound keeps MPI messages and NCCL scratch moderate).
[[nodiscard]] absl::Status AllReduceSumBucketed(Collective& collective, std::span<float> values,
                                                int64_t bucket_floats = int64_t{1} << 22);

// Broadcasts a string of any length from `root` (length first, then the bytes).
[[nodiscard]] absl::Status BroadcastString(Collective& collective, std::string* value, int root);

// Every rank passes its own outcome; every rank gets OK if all were OK, otherwise the error of
// the lowest failing rank, prefixed "rank N: " (so the leader can report a worker's error).
// An error of the collective itself is returned as is.
[[nodiscard]] absl::Status AgreeOnStatus(Collective& collective, const absl::Status& local);

}  // namespace fedattn::parallel
