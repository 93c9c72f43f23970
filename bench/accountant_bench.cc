// accountant_bench: cost of the RDP accountant on the default order grid (156 orders).
//   epsilon_ms     one ε for T identical steps (RDP at every order, then the conversion)
//   calibration_ms one noise calibration to the ε just computed (secant search, tolerance 1e-6)
// Prints a table, then one JSON object per configuration per line.
//
// Usage: accountant_bench [min_seconds_per_measurement (default 0.3)]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fedattn/dp/accountant.h"
#include "fedattn/dp/calibration.h"
#include "nlohmann/json.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Config {
  const char* name;
  double q;
  double sigma;
  int64_t steps;
  double delta;
};

// Median wall time in ms of `fn`, repeated for at least `min_seconds` (and at least 5 times).
template <typename Fn>
double MedianMs(Fn&& fn, double min_seconds) {
  std::vector<double> ms;
  const auto start = Clock::now();
  while (ms.size() < 5 ||
         std::chrono::duration<double>(Clock::now() - start).count() < min_seconds) {
    const auto t0 = Clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const double min_seconds = argc > 1 ? std::atof(argv[1]) : 0.3;
  const Config configs[] = {
      {"dpsgd_1e6_steps", 1e-3, 1.0, 1'000'000, 1e-5},
      {"dpsgd_1e6_steps_q0.01", 0.01, 1.1, 1'000'000, 1e-5},
      {"mnist_60_epochs", 256.0 / 60000.0, 1.1, 14063, 1e-5},
      {"tiny_q_1e7_steps", 1e-6, 100.0, 10'000'000, 1e-12},
      {"fedavg_1000_rounds", 0.1, 0.8, 1000, 1e-6},
      {"half_sampling_high_noise", 0.5, 20.0, 1'000'000, 1e-5},
  };
  std::vector<nlohmann::json> rows;
  std::printf("%-26s %9s %7s %9s %8s %10s %7s %12s %14s %6s\n", "config", "q", "sigma", "steps",
              "delta", "epsilon", "order", "epsilon_ms", "calibration_ms", "evals");
  for (const Config& c : configs) {
    auto g = fedattn::dp::ComputeEpsilon(c.q, c.sigma, c.steps, c.delta);
    if (!g.ok()) {
      std::fprintf(stderr, "%s: %s\n", c.name, std::string(g.status().message()).c_str());
      return 1;
    }
    const double epsilon_ms = MedianMs(
        [&] {
          auto r = fedattn::dp::ComputeEpsilon(c.q, c.sigma, c.steps, c.delta);
          if (!r.ok()) std::abort();
        },
        min_seconds);
    auto cal = fedattn::dp::CalibrateNoiseMultiplier(g->epsilon, c.delta, c.q, c.steps);
    if (!cal.ok()) {
      std::fprintf(stderr, "%s: %s\n", c.name, std::string(cal.status().message()).c_str());
      return 1;
    }
    const double calibration_ms = MedianMs(
        [&] {
          auto r = fedattn::dp::CalibrateNoiseMultiplier(g->epsilon, c.delta, c.q, c.steps);
          if (!r.ok()) std::abort();
        },
        min_seconds);
    std::printf("%-26s %9.3g %7.3g %9lld %8.0e %10.5g %7.3g %12.3f %14.2f %6d\n", c.name, c.q,
                c.sigma, static_cast<long long>(c.steps), c.delta, g->epsilon, g->optimal_order,
                epsilon_ms, calibration_ms, cal->evaluations);
    nlohmann::json row;
    row["bench"] = "accountant";
    row["config"] = c.name;
    row["sampling_rate"] = c.q;
    row["noise_multiplier"] = c.sigma;
    row["steps"] = c.steps;
    row["delta"] = c.delta;
    row["epsilon"] = g->epsilon;
    row["optimal_order"] = g->optimal_order;
    row["num_orders"] = g->orders.size();
    row["epsilon_ms"] = epsilon_ms;
    row["calibration_ms"] = calibration_ms;
    row["calibration_evaluations"] = cal->evaluations;
    row["calibrated_noise_multiplier"] = cal->noise_multiplier;
    rows.push_back(std::move(row));
  }
  for (const nlohmann::json& row : rows) std::printf("%s\n", row.dump().c_str());
  return 0;
}
