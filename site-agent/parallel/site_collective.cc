#include "fedattn/agent/site_collective.h"

#include <mpi.h>
#include <sched.h>
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <limits>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "fedattn/common/logging.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/config.h"

#if FEDATTN_HAVE_NCCL
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <nccl.h>
#endif

namespace fedattn::agent {
namespace {

// MPI counts are int: larger buffers go in pieces.
constexpr size_t kMaxCount = size_t{1} << 30;

std::string MpiErrorText(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return absl::StrCat("MPI error ", code);
  return std::string(text, static_cast<size_t>(length));
}

// Fault injection for the tests: FEDATTN_TEST_KILL_AT_ALLREDUCE=R:N makes rank R kill itself
// (SIGKILL, no clean-up) at its N-th all-reduce (1-based).
void MaybeDie(int rank, int64_t count) {
  const char* spec = std::getenv("FEDATTN_TEST_KILL_AT_ALLREDUCE");
  if (spec == nullptr) return;
  std::vector<std::string> parts = absl::StrSplit(spec, ':');
  int target_rank = -1;
  int64_t target_count = -1;
  if (parts.size() == 2 && absl::SimpleAtoi(parts[0], &target_rank) && absl::SimpleAtoi(parts[1], &target_count) &&
      target_rank == rank && target_count == count) {
    spdlog::warn("FEDATTN_TEST_KILL_AT_ALLREDUCE: rank {} kills itself at all-reduce {}", rank, count);
    raise(SIGKILL);
  }
}

// Collectives over a duplicate of MPI_COMM_WORLD; owns MPI's initialisation.
class MpiCollective final : public parallel::Collective {
 public:
  static absl::StatusOr<std::unique_ptr<MpiCollective>> Create(absl::Duration timeout) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) return absl::FailedPreconditionError("MPI is already initialised in this process");
    int provided = 0;
    if (int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided); rc != MPI_SUCCESS) {
      return absl::UnavailableError(absl::StrCat("MPI_Init_thread: ", MpiErrorText(rc)));
    }
    std::unique_ptr<MpiCollective> collective(new MpiCollective(timeout));
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (provided < MPI_THREAD_SERIALIZED) {
      return absl::UnavailableError("this MPI library does not support MPI_THREAD_SERIALIZED");
    }
    if (int rc = MPI_Comm_dup(MPI_COMM_WORLD, &collective->comm_); rc != MPI_SUCCESS) {
      return absl::UnavailableError(absl::StrCat("MPI_Comm_dup: ", MpiErrorText(rc)));
    }
    MPI_Comm_set_errhandler(collective->comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(collective->comm_, &collective->rank_);
    MPI_Comm_size(collective->comm_, &collective->size_);
    // The local rank: rank among the processes that share this machine's memory.
    MPI_Comm node = MPI_COMM_NULL;
    if (int rc = MPI_Comm_split_type(collective->comm_, MPI_COMM_TYPE_SHARED, collective->rank_, MPI_INFO_NULL, &node);
        rc != MPI_SUCCESS) {
      return absl::UnavailableError(absl::StrCat("MPI_Comm_split_type: ", MpiErrorText(rc)));
    }
    MPI_Comm_rank(node, &collective->local_rank_);
    MPI_Comm_free(&node);
    return collective;
  }

  ~MpiCollective() override {
    if (broken_) {
      // A peer may be dead or stuck in an operation we abandoned: MPI_Finalize could wait forever.
      spdlog::warn("the MPI group broke; leaving without MPI_Finalize");
      return;
    }
    if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
    MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  std::string_view backend() const override { return "mpi"; }
  bool broken() const override { return broken_; }

  absl::Status Broadcast(std::span<uint8_t> bytes, int root) override {
    for (size_t begin = 0; begin < bytes.size(); begin += kMaxCount) {
      const int count = static_cast<int>(std::min(kMaxCount, bytes.size() - begin));
      RETURN_IF_ERROR(Run("MPI broadcast", [&](MPI_Request* request) {
        return MPI_Ibcast(bytes.data() + begin, count, MPI_BYTE, root, comm_, request);
      }));
    }
    return absl::OkStatus();
  }
  absl::Status AllGather(std::span<const uint8_t> mine, std::span<uint8_t> all) override {
    if (all.size() != mine.size() * static_cast<size_t>(size_) || mine.size() > kMaxCount) {
      return absl::InvalidArgumentError("AllGather: output size is not size() * input size");
    }
    return Run("MPI all-gather", [&](MPI_Request* request) {
      return MPI_Iallgather(mine.data(), static_cast<int>(mine.size()), MPI_BYTE, all.data(),
                            static_cast<int>(mine.size()), MPI_BYTE, comm_, request);
    });
  }
  absl::Status BroadcastFloats(std::span<float> values, int root) override {
    return Broadcast(std::span<uint8_t>(reinterpret_cast<uint8_t*>(values.data()), values.size_bytes()), root);
  }
  absl::Status AllReduceSum(std::span<float> values) override {
    MaybeDie(rank_, ++all_reduces_);
    for (size_t begin = 0; begin < values.size(); begin += kMaxCount) {
      const int count = static_cast<int>(std::min(kMaxCount, values.size() - begin));
      RETURN_IF_ERROR(Run("MPI all-reduce", [&](MPI_Request* request) {
        return MPI_Iallreduce(MPI_IN_PLACE, values.data() + begin, count, MPI_FLOAT, MPI_SUM, comm_, request);
      }));
    }
    return absl::OkStatus();
  }
  absl::Status Barrier() override {
    return Run("MPI barrier", [&](MPI_Request* request) { return MPI_Ibarrier(comm_, request); });
  }

  absl::Duration timeout() const { return timeout_; }

 private:
  explicit MpiCollective(absl::Duration timeout) : timeout_(timeout) {}

  // Starts a non-blocking operation and polls it to completion or the deadline: a blocking MPI
  // call would wait forever for a dead peer.
  absl::Status Run(const char* op, const std::function<int(MPI_Request*)>& start) {
    if (broken_) return absl::AbortedError(absl::StrCat(op, ": the MPI group is broken (an earlier operation failed)"));
    MPI_Request request = MPI_REQUEST_NULL;
    if (int rc = start(&request); rc != MPI_SUCCESS) {
      broken_ = true;
      return absl::UnavailableError(absl::StrCat(op, " on rank ", rank_, ": ", MpiErrorText(rc)));
    }
    const absl::Time deadline = absl::Now() + timeout_;
    int64_t polls = 0;
    while (true) {
      int done = 0;
      if (int rc = MPI_Test(&request, &done, MPI_STATUS_IGNORE); rc != MPI_SUCCESS) {
        broken_ = true;
        return absl::UnavailableError(absl::StrCat(op, " on rank ", rank_, ": ", MpiErrorText(rc)));
      }
      if (done) return absl::OkStatus();
      ++polls;
      // Spin briefly (steps are milliseconds apart), then back off to at most 1 ms between polls
      // so a waiting rank leaves the cores to the others.
      if (polls < 2000) {
        sched_yield();
        continue;
      }
      if (polls % 64 == 0 && absl::Now() > deadline) {
        broken_ = true;
        return absl::DeadlineExceededError(absl::StrCat(
            op, " on rank ", rank_, " of ", size_, ": no completion within ", absl::FormatDuration(timeout_),
            " (a rank died or stalled; docs/multi-gpu.md)"));
      }
      std::this_thread::sleep_for(std::chrono::microseconds(std::min<int64_t>(1000, 20 * (polls / 2000))));
    }
  }

  absl::Duration timeout_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1, local_rank_ = 0;
  bool broken_ = false;
  int64_t all_reduces_ = 0;
};

#if FEDATTN_HAVE_NCCL
std::string NcclText(ncclResult_t result) { return ncclGetErrorString(result); }

// Float collectives over NCCL on this rank's GPU (LibTorch's current stream, so they are ordered
// after the backward kernels that produced the gradients); bytes over MPI (host memory).
class NcclCollective final : public parallel::Collective {
 public:
  static absl::StatusOr<std::unique_ptr<NcclCollective>> Create(std::unique_ptr<MpiCollective> host) {
    int devices = 0;
    if (cudaError_t e = cudaGetDeviceCount(&devices); e != cudaSuccess || devices == 0) {
      return absl::FailedPreconditionError(absl::StrCat("NCCL needs a CUDA device: ", cudaGetErrorString(e)));
    }
    const int device = host->local_rank() % devices;
    if (host->local_rank() >= devices) {
      spdlog::warn("rank {}: local rank {} but {} GPUs on this machine; sharing GPU {}", host->rank(),
                   host->local_rank(), devices, device);
    }
    if (cudaError_t e = cudaSetDevice(device); e != cudaSuccess) {
      return absl::UnavailableError(absl::StrCat("cudaSetDevice(", device, "): ", cudaGetErrorString(e)));
    }
    ncclUniqueId id;
    if (host->rank() == 0) {
      if (ncclResult_t r = ncclGetUniqueId(&id); r != ncclSuccess) {
        return absl::UnavailableError(absl::StrCat("ncclGetUniqueId: ", NcclText(r)));
      }
    }
    RETURN_IF_ERROR(host->Broadcast(std::span<uint8_t>(reinterpret_cast<uint8_t*>(&id), sizeof(id)), 0));
    std::unique_ptr<NcclCollective> collective(new NcclCollective(std::move(host), device));
    if (ncclResult_t r = ncclCommInitRank(&collective->comm_, collective->host_->size(), id, collective->host_->rank());
        r != ncclSuccess) {
      collective->comm_ = nullptr;
      return absl::UnavailableError(absl::StrCat("ncclCommInitRank: ", NcclText(r)));
    }
    spdlog::info("rank {}: NCCL communicator of {} ranks on GPU {}", collective->host_->rank(),
                 collective->host_->size(), device);
    return collective;
  }

  ~NcclCollective() override {
    if (comm_ == nullptr) return;
    // ncclCommDestroy waits for outstanding work, which never finishes if a peer died.
    if (broken_) {
      ncclCommAbort(comm_);
    } else {
      ncclCommDestroy(comm_);
    }
  }

  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  int local_rank() const override { return host_->local_rank(); }
  std::string_view backend() const override { return "nccl"; }
  bool device_memory() const override { return true; }
  bool broken() const override { return broken_ || host_->broken(); }

  absl::Status Broadcast(std::span<uint8_t> bytes, int root) override { return host_->Broadcast(bytes, root); }
  absl::Status AllGather(std::span<const uint8_t> mine, std::span<uint8_t> all) override {
    return host_->AllGather(mine, all);
  }
  absl::Status Barrier() override { return host_->Barrier(); }
  absl::Status BroadcastFloats(std::span<float> values, int root) override {
    return Run("NCCL broadcast", [&](cudaStream_t stream) {
      return ncclBroadcast(values.data(), values.data(), values.size(), ncclFloat, root, comm_, stream);
    });
  }
  absl::Status AllReduceSum(std::span<float> values) override {
    MaybeDie(host_->rank(), ++all_reduces_);
    return Run("NCCL all-reduce", [&](cudaStream_t stream) {
      return ncclAllReduce(values.data(), values.data(), values.size(), ncclFloat, ncclSum, comm_, stream);
    });
  }

 private:
  NcclCollective(std::unique_ptr<MpiCollective> host, int device) : host_(std::move(host)), device_(device) {}

  // Enqueues on LibTorch's current stream, then polls the stream and the communicator's
  // asynchronous error until done or the deadline (then aborts the communicator).
  absl::Status Run(const char* op, const std::function<ncclResult_t(cudaStream_t)>& enqueue) {
    if (broken()) return absl::AbortedError(absl::StrCat(op, ": the NCCL group is broken (an earlier operation failed)"));
    // The current device is per thread; the agent trains on its task thread.
    if (cudaError_t e = cudaSetDevice(device_); e != cudaSuccess) {
      return absl::UnavailableError(absl::StrCat(op, ": cudaSetDevice(", device_, "): ", cudaGetErrorString(e)));
    }
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device_)).stream();
    if (ncclResult_t r = enqueue(stream); r != ncclSuccess) {
      broken_ = true;
      return absl::UnavailableError(absl::StrCat(op, " on rank ", rank(), ": ", NcclText(r)));
    }
    const absl::Time deadline = absl::Now() + host_->timeout();
    int64_t polls = 0;
    while (true) {
      const cudaError_t state = cudaStreamQuery(stream);
      if (state == cudaSuccess) return absl::OkStatus();
      if (state != cudaErrorNotReady) {
        broken_ = true;
        return absl::UnavailableError(absl::StrCat(op, " on rank ", rank(), ": ", cudaGetErrorString(state)));
      }
      ncclResult_t async = ncclSuccess;
      if (ncclResult_t r = ncclCommGetAsyncError(comm_, &async); r != ncclSuccess || async != ncclSuccess) {
        broken_ = true;
        ncclCommAbort(comm_);
        comm_ = nullptr;
        return absl::UnavailableError(absl::StrCat(op, " on rank ", rank(), ": ", NcclText(r != ncclSuccess ? r : async)));
      }
      if (++polls % 64 == 0 && absl::Now() > deadline) {
        broken_ = true;
        ncclCommAbort(comm_);
        comm_ = nullptr;
        return absl::DeadlineExceededError(absl::StrCat(op, " on rank ", rank(), " of ", size(), ": no completion within ",
                                                        absl::FormatDuration(host_->timeout()),
                                                        " (a rank died or stalled); communicator aborted"));
      }
      std::this_thread::sleep_for(std::chrono::microseconds(polls < 1000 ? 1 : 100));
    }
  }

  std::unique_ptr<MpiCollective> host_;
  int device_;
  ncclComm_t comm_ = nullptr;
  bool broken_ = false;
  int64_t all_reduces_ = 0;
};
#endif  // FEDATTN_HAVE_NCCL

}  // namespace

bool LaunchedByMpi() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMI_SIZE") != nullptr ||
         std::getenv("PMIX_RANK") != nullptr;
}

int LocalRankFromEnvironment() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"}) {
    int value = 0;
    if (const char* text = std::getenv(name); text != nullptr && absl::SimpleAtoi(text, &value)) return value;
  }
  return 0;
}

absl::StatusOr<std::unique_ptr<parallel::Collective>> CreateSiteCollective(const SiteCollectiveOptions& options) {
  if (options.backend != "auto" && options.backend != "mpi" && options.backend != "nccl") {
    return absl::InvalidArgumentError(absl::StrCat("collective backend '", options.backend, "': use auto, mpi or nccl"));
  }
  if (options.timeout <= absl::ZeroDuration()) return absl::InvalidArgumentError("collective timeout must be positive");
  if (!LaunchedByMpi()) return std::make_unique<parallel::SingleProcessCollective>();
  ASSIGN_OR_RETURN(std::unique_ptr<MpiCollective> mpi, MpiCollective::Create(options.timeout));
#if FEDATTN_HAVE_NCCL
  const bool want_nccl = options.backend == "nccl" || (options.backend == "auto" && options.device != "cpu");
  if (want_nccl) {
    int devices = 0;
    const bool have_gpu = cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0;
    if (have_gpu || options.backend == "nccl") {
      ASSIGN_OR_RETURN(std::unique_ptr<NcclCollective> nccl, NcclCollective::Create(std::move(mpi)));
      return nccl;
    }
  }
#else
  if (options.backend == "nccl") {
    return absl::FailedPreconditionError("collective backend nccl: this build has no NCCL (FEDATTN_HAVE_NCCL=0)");
  }
#endif
  return mpi;
}

}  // namespace fedattn::agent
