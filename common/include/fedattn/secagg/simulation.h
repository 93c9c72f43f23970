// An in-process SecAgg+ federation: n clients and a server driven in one loop, with a dropout
// schedule, per-stage timings and byte counts. Used by the tests and bench/secagg_bench.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "fedattn/secagg/config.h"
#include "fedattn/secagg/server.h"

namespace fedattn::secagg {

struct SimulationOptions {
  SecAggConfig config;
  // Seeds every key, seed and share of the run: two runs with the same seed are identical.
  uint64_t seed = 1;
  // site → the stage whose message it never sends (kAdvertiseKeys: silent from the start,
  // kMaskedInput: shares keys then drops before masking, kUnmask: drops after masking).
  std::map<SiteId, Stage> dropouts;
};

// Seconds per protocol stage (0 AdvertiseKeys .. 3 Unmask).
struct StageSeconds {
  double stage[4] = {0, 0, 0, 0};
  double total() const { return stage[0] + stage[1] + stage[2] + stage[3]; }
};

struct SimulationReport {
  AggregateResult result;
  StageSeconds client_mean;     // mean over the clients that ran each stage
  StageSeconds client_max;
  StageSeconds server;          // Handle*() of the stage's messages plus its Finish*()
  uint64_t client_sent_bytes_max = 0;      // over clients, all stages (WireSize)
  uint64_t client_received_bytes_max = 0;
  uint64_t server_received_bytes = 0;
};

// Fills `out` (d words) with site's encoded input. Called once per site that masks.
using InputFn = std::function<absl::Status(SiteId site, std::span<uint32_t> out)>;

// Runs one round. Identity keys are generated from the seed. An abort (too many dropouts) or a
// refusal is returned as the error of the stage that failed.
[[nodiscard]] absl::StatusOr<SimulationReport> RunSimulation(const SimulationOptions& options,
                                                             const InputFn& input);

// Site i's input in tests: words drawn from DeterministicRandom(seed ^ site), reduced mod
// `bound` (0: full 32 bits).
[[nodiscard]] absl::Status FillTestInput(uint64_t seed, SiteId site, uint32_t bound,
                                         std::span<uint32_t> out);

}  // namespace fedattn::secagg
