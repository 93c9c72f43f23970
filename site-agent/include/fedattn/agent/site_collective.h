// The collective a site's ranks train with (fedattn/parallel/collective.h), chosen at start-up:
// one process without mpirun; under mpirun (Open MPI), MPI on CPU and NCCL on CUDA builds, one
// GPU per rank chosen from the local rank (OMPI_COMM_WORLD_LOCAL_RANK). docs/multi-gpu.md.
//
// MPI is initialised (MPI_THREAD_SERIALIZED: the agent's task thread and its heartbeat take turns)
// by the first MPI collective and finalised when it is destroyed — unless the group broke, when a
// dead peer would make MPI_Finalize wait forever: then the process just exits.
//
// Dead ranks: MPI runs with MPI_ERRORS_RETURN and every operation is non-blocking (MPI_I*),
// polled until it completes or the deadline passes; NCCL operations are polled the same way
// (cudaStreamQuery, ncclCommGetAsyncError) and the communicator is aborted (ncclCommAbort) at the
// deadline. Open MPI's mpirun kills the whole job when one rank dies unless started with
// --enable-recovery; with it, the survivors see DeadlineExceeded and the leader reports it.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fedattn/parallel/collective.h"

namespace fedattn::agent {

struct SiteCollectiveOptions {
  std::string backend = "auto";         // auto (nccl for device cuda on NCCL builds, else mpi) | mpi | nccl
  std::string device = "cpu";           // the trainer's device: cpu | cuda | auto
  absl::Duration timeout = absl::Seconds(600);  // the most one operation may wait for a peer
};

// True when this process was started by mpirun/orterun (Open MPI sets OMPI_COMM_WORLD_SIZE) or
// another PMI launcher (PMI_SIZE, PMIX_RANK).
bool LaunchedByMpi();

// Local rank from the launcher's environment (OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID,
// SLURM_LOCALID), or 0.
int LocalRankFromEnvironment();

// A SingleProcessCollective when !LaunchedByMpi(); otherwise an MPI or NCCL group over
// MPI_COMM_WORLD. Errors: Unavailable with MPI's or NCCL's text; FailedPrecondition when nccl
// is asked of a build without it.
[[nodiscard]] absl::StatusOr<std::unique_ptr<parallel::Collective>> CreateSiteCollective(
    const SiteCollectiveOptions& options);

}  // namespace fedattn::agent
