// An in-process group of N ranks (one thread each) behind the Collective interface: the fake
// that lets data-parallel training, the leader/worker protocol and their failure paths run in
// one test process (as gloo's tests run ranks as threads).
//
// Sums are taken in rank order, so results are deterministic. A rank that stops calling (a
// "dead" rank) makes the others' next operation fail with DeadlineExceeded after `timeout`;
// mismatched operations across ranks fail with Internal. After an error every rank's
// Collective is broken().
#pragma once

#include <memory>

#include "absl/time/time.h"
#include "fedattn/parallel/collective.h"

namespace fedattn::parallel {

class InProcessGroup {
 public:
  // REQUIRES: size >= 1, timeout > 0.
  static std::shared_ptr<InProcessGroup> Create(int size, absl::Duration timeout = absl::Seconds(30));
  virtual ~InProcessGroup() = default;
  // The Collective of `rank` (call once per rank; it keeps the group alive). local_rank == rank.
  virtual std::unique_ptr<Collective> Rank(int rank) = 0;
};

}  // namespace fedattn::parallel
