#include "fedattn/agent/backoff.h"

#include <algorithm>

namespace fedattn::agent {

absl::Duration Backoff::Next() {
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  const absl::Duration wait = std::min(next_ * jitter(rng_), max_);
  next_ = std::min(next_ * 2, max_);
  return wait;
}

}  // namespace fedattn::agent
