// FedAvg aggregation kernel against the machine's float32 sum-reduce bandwidth (issue 6).
//
// Usage: aggregation_bench [sites=10] [params=10000000] [repeats=5]
// Baseline: SumReduce over the same n update buffers (read-only, vectorised per-lane sums).
// Forms measured, each as the best of `repeats` runs over warm (already faulted-in) buffers:
//   kernel_fused        one FusedWeightedSum pass over all n updates (overwrite; no Finish)
//   fedavg_all_at_once  FedAvg via AggregateFit: Begin + AccumulateBatch (the fused pass) + Finish
//   fedavg_streaming    FedAvg via Begin + n × Accumulate (one per arriving site) + Finish
// gbps counts the update bytes read (sites × params × 4) per second, the same bytes the baseline
// reads, so ratio = gbps / baseline_gbps. Ends with one JSON object per configuration per line.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "fedattn/coordinator/strategy/aggregation_kernel.h"
#include "fedattn/coordinator/strategy/fedavg.h"

namespace {

using fedattn::coordinator::strategy::FitResult;
using Clock = std::chrono::steady_clock;

double BestSeconds(int repeats, const std::function<void()>& body) {
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto start = Clock::now();
    body();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  namespace st = fedattn::coordinator::strategy;
  const std::size_t sites = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 10;
  const std::size_t params = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 10'000'000;
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 5;

  std::vector<std::vector<float>> updates(sites, std::vector<float>(params));
  for (std::size_t k = 0; k < sites; ++k) {
    for (std::size_t i = 0; i < params; ++i) {
      updates[k][i] = static_cast<float>((i * 7 + k * 13) % 101) * 1e-3f - 0.05f;
    }
  }
  std::vector<const float*> pointers;
  std::vector<float> weights;
  std::vector<FitResult> results;
  for (std::size_t k = 0; k < sites; ++k) {
    pointers.push_back(updates[k].data());
    weights.push_back(static_cast<float>(100 + k));
    results.push_back({"site" + std::to_string(k), static_cast<int64_t>(100 + k), updates[k], {}});
  }
  const double bytes = static_cast<double>(sites) * static_cast<double>(params) * sizeof(float);

  volatile float sink = 0;
  const double baseline_s = BestSeconds(repeats, [&] {
    float total = 0;
    for (const auto& u : updates) total += st::SumReduce(u);
    sink = total;
  });
  const double baseline_gbps = bytes / baseline_s / 1e9;

  std::vector<float> acc(params, 0.0f);
  std::vector<float> global(params, 0.0f);
  auto fedavg = st::FedAvg::Create({});
  if (!fedavg.ok()) return 1;

  struct Form {
    const char* name;
    std::function<void()> body;
  };
  const std::vector<Form> forms = {
      {"kernel_fused", [&] { st::FusedWeightedSum(acc, pointers, weights, 0, true); }},
      {"fedavg_all_at_once",
       [&] {
         if (!st::AggregateFit(**fedavg, 1, global, results, {}).ok()) std::abort();
       }},
      {"fedavg_streaming",
       [&] {
         if (!(*fedavg)->Begin(1, params).ok()) std::abort();
         for (const FitResult& r : results) {
           if (!(*fedavg)->Accumulate(r).ok()) std::abort();
         }
         if (!(*fedavg)->Finish(global).ok()) std::abort();
       }},
  };
  std::vector<std::string> json;
  std::printf("float32 sum-reduce baseline: %.2f GB/s (%.1f ms over %zu x %zu floats)\n",
              baseline_gbps, baseline_s * 1e3, sites, params);
  for (const Form& form : forms) {
    form.body();  // warm-up: faults in the accumulator and the global model
    const double s = BestSeconds(repeats, form.body);
    const double gbps = bytes / s / 1e9;
    std::printf("%-20s %8.1f ms  %6.2f GB/s  ratio %.2f\n", form.name, s * 1e3, gbps,
                gbps / baseline_gbps);
    char line[512];
    std::snprintf(line, sizeof(line),
                  "{\"bench\":\"aggregation\",\"form\":\"%s\",\"sites\":%zu,\"params\":%zu,"
                  "\"seconds\":%.6f,\"gbps\":%.3f,\"baseline_gbps\":%.3f,\"ratio\":%.3f}",
                  form.name, sites, params, s, gbps, baseline_gbps, gbps / baseline_gbps);
    json.emplace_back(line);
  }
  for (const std::string& line : json) std::printf("%s\n", line.c_str());
  return sink == 12345.0f ? 2 : 0;  // keep the baseline's result alive
}
