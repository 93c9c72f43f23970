// Exponential backoff with jitter for reconnecting to the coordinator.
#pragma once

#include <cstdint>
#include <random>

#include "absl/time/time.h"

namespace fedattn::agent {

// Not thread-safe.
class Backoff {
 public:
  // Waits start at `initial`, double after each failure up to `max`, and are spread ±20% so a
  // federation of agents restarted together does not reconnect in lockstep.
  Backoff(absl::Duration initial, absl::Duration max, uint64_t seed = std::random_device{}())
      : initial_(initial), max_(max), next_(initial), rng_(seed) {}

  // The wait before the next attempt; grows the following one.
  absl::Duration Next();
  // After a success: start again from `initial`.
  void Reset() { next_ = initial_; }

 private:
  absl::Duration initial_;
  absl::Duration max_;
  absl::Duration next_;
  std::mt19937_64 rng_;
};

}  // namespace fedattn::agent
