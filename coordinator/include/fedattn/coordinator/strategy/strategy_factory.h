// The strategy a job config names, built with the job's hyper-parameters.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "fedattn/coordinator/strategy/strategy.h"
#include "fedattn/models/job_spec.h"

namespace fedattn::coordinator::strategy {

// INVALID_ARGUMENT for an unknown name or hyper-parameters the strategy refuses.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Strategy>> MakeStrategy(const models::JobStrategy& config,
                                                                     int min_sites);

}  // namespace fedattn::coordinator::strategy
