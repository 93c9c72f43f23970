#include "privacy_command.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/dp/accountant.h"
#include "fedattn/dp/calibration.h"
#include "nlohmann/json.hpp"

namespace fedattn::cli {
namespace {

constexpr absl::string_view kSamplingRate = "--sampling-rate";
constexpr absl::string_view kNoiseMultiplier = "--noise-multiplier";
constexpr absl::string_view kSteps = "--steps";
constexpr absl::string_view kDelta = "--delta";
constexpr absl::string_view kEpsilon = "--epsilon";
constexpr absl::string_view kOrders = "--orders";

absl::Status FlagError(absl::string_view flag, absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(flag, ": '", text, "' ", why));
}

absl::StatusOr<double> ParseNumber(absl::string_view flag, absl::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError(absl::StrCat(flag, " is required"));
  double value = 0;
  if (!absl::SimpleAtod(text, &value) || !std::isfinite(value)) {
    return FlagError(flag, text, "is not a finite number");
  }
  return value;
}

absl::StatusOr<double> ParseSamplingRate(absl::string_view text) {
  ASSIGN_OR_RETURN(const double q, ParseNumber(kSamplingRate, text));
  if (!(q > 0.0 && q <= 1.0)) return FlagError(kSamplingRate, text, "must be in (0, 1]");
  return q;
}

absl::StatusOr<double> ParseNoiseMultiplier(absl::string_view text) {
  ASSIGN_OR_RETURN(const double sigma, ParseNumber(kNoiseMultiplier, text));
  if (!(sigma > 0.0)) return FlagError(kNoiseMultiplier, text, "must be > 0");
  return sigma;
}

absl::StatusOr<double> ParseDelta(absl::string_view text) {
  ASSIGN_OR_RETURN(const double delta, ParseNumber(kDelta, text));
  if (!(delta > 0.0 && delta < 1.0)) return FlagError(kDelta, text, "must be in (0, 1)");
  return delta;
}

absl::StatusOr<double> ParseEpsilon(absl::string_view text, bool allow_zero) {
  ASSIGN_OR_RETURN(const double epsilon, ParseNumber(kEpsilon, text));
  if (epsilon < 0.0 || (!allow_zero && epsilon == 0.0)) {
    return FlagError(kEpsilon, text, allow_zero ? "must be >= 0" : "must be > 0");
  }
  return epsilon;
}

absl::StatusOr<int64_t> ParseSteps(absl::string_view text) {
  // Accepts 1000000 and 1e6 alike, but only whole numbers.
  ASSIGN_OR_RETURN(const double steps, ParseNumber(kSteps, text));
  if (!(steps >= 1.0 && steps <= 1e12) || std::floor(steps) != steps) {
    return FlagError(kSteps, text, "must be a whole number in [1, 1e12]");
  }
  return static_cast<int64_t>(steps);
}

absl::StatusOr<dp::AccountantOptions> ParseOrders(absl::string_view text) {
  dp::AccountantOptions options;
  if (text.empty()) return options;
  options.orders.clear();
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    double order = 0;
    if (!absl::SimpleAtod(item, &order)) {
      return FlagError(kOrders, text, absl::StrCat("has '", item, "', which is not a number"));
    }
    options.orders.push_back(order);
  }
  if (const absl::Status status = options.Validate(); !status.ok()) {
    return FlagError(kOrders, text, absl::StrCat("is not a valid order grid: ", status.message()));
  }
  return options;
}

std::string Num(double value, int digits = 6) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*g", digits, value);
  return buffer;
}

std::string GridLine(const dp::PrivacyGuarantee& g) {
  const auto [lo, hi] = std::minmax_element(g.orders.begin(), g.orders.end());
  std::string line = absl::StrCat(
      "  optimal RDP order ", Num(g.optimal_order), " on ",
      g.orders == dp::DefaultRdpOrders() ? "the default grid (dp_accounting's), " : "a grid of ",
      g.orders.size(), " orders from ", Num(*lo), " to ", Num(*hi), "\n");
  if (g.optimal_order_at_grid_edge) {
    absl::StrAppend(&line,
                    "  note: the optimum is at the edge of the grid; a wider grid may certify a "
                    "smaller epsilon\n");
  }
  return line;
}

constexpr absl::string_view kAssumptions =
    "  assumes Poisson sampling and add/remove adjacency of one record; RDP of the subsampled "
    "Gaussian (Mironov et al. 2019) converted by Balle et al. 2020, Thm 21\n";

nlohmann::json BaseJson(absl::string_view query, const dp::PrivacyGuarantee& g) {
  nlohmann::json j;
  j["query"] = std::string(query);
  j["epsilon"] = g.epsilon;
  j["delta"] = g.delta;
  j["optimal_order"] = g.optimal_order;
  j["optimal_order_at_grid_edge"] = g.optimal_order_at_grid_edge;
  j["orders"] = g.orders;
  j["accountant"] = "rdp_poisson_subsampled_gaussian";
  j["conversion"] = "balle2020_thm21";
  return j;
}

}  // namespace

absl::StatusOr<std::string> RunPrivacyQuery(PrivacyQuery query, const PrivacyArgs& args) {
  ASSIGN_OR_RETURN(const double q, ParseSamplingRate(args.sampling_rate));
  ASSIGN_OR_RETURN(const int64_t steps, ParseSteps(args.steps));
  ASSIGN_OR_RETURN(const dp::AccountantOptions options, ParseOrders(args.orders));
  switch (query) {
    case PrivacyQuery::kEpsilon: {
      ASSIGN_OR_RETURN(const double sigma, ParseNoiseMultiplier(args.noise_multiplier));
      ASSIGN_OR_RETURN(const double delta, ParseDelta(args.delta));
      ASSIGN_OR_RETURN(const dp::PrivacyGuarantee g,
                       dp::ComputeEpsilon(q, sigma, steps, delta, options));
      if (args.json) {
        nlohmann::json j = BaseJson("epsilon", g);
        j["sampling_rate"] = q;
        j["noise_multiplier"] = sigma;
        j["steps"] = steps;
        return j.dump() + "\n";
      }
      return absl::StrCat("epsilon = ", Num(g.epsilon), " at delta = ", Num(g.delta), "\n",
                          "  sampling rate q = ", Num(q), ", noise multiplier sigma = ", Num(sigma),
                          ", steps T = ", steps, "\n", GridLine(g), kAssumptions);
    }
    case PrivacyQuery::kDelta: {
      ASSIGN_OR_RETURN(const double sigma, ParseNoiseMultiplier(args.noise_multiplier));
      ASSIGN_OR_RETURN(const double epsilon, ParseEpsilon(args.epsilon, /*allow_zero=*/true));
      ASSIGN_OR_RETURN(const dp::PrivacyGuarantee g,
                       dp::ComputeDelta(q, sigma, steps, epsilon, options));
      if (args.json) {
        nlohmann::json j = BaseJson("delta", g);
        j["sampling_rate"] = q;
        j["noise_multiplier"] = sigma;
        j["steps"] = steps;
        return j.dump() + "\n";
      }
      return absl::StrCat("delta = ", Num(g.delta), " at epsilon = ", Num(g.epsilon), "\n",
                          "  sampling rate q = ", Num(q), ", noise multiplier sigma = ", Num(sigma),
                          ", steps T = ", steps, "\n", GridLine(g), kAssumptions);
    }
    case PrivacyQuery::kNoise: {
      ASSIGN_OR_RETURN(const double target, ParseEpsilon(args.epsilon, /*allow_zero=*/false));
      ASSIGN_OR_RETURN(const double delta, ParseDelta(args.delta));
      dp::CalibrationOptions calibration;
      calibration.accountant = options;
      ASSIGN_OR_RETURN(const dp::NoiseCalibration c,
                       dp::CalibrateNoiseMultiplier(target, delta, q, steps, calibration));
      if (args.json) {
        nlohmann::json j = BaseJson("noise", c.guarantee);
        j["noise_multiplier"] = c.noise_multiplier;
        j["target_epsilon"] = target;
        j["relative_tolerance"] = calibration.relative_tolerance;
        j["sampling_rate"] = q;
        j["steps"] = steps;
        return j.dump() + "\n";
      }
      return absl::StrCat("noise multiplier sigma = ", Num(c.noise_multiplier, 8),
                          " for epsilon <= ", Num(target), " at delta = ", Num(delta), "\n",
                          "  achieved epsilon = ", Num(c.guarantee.epsilon),
                          " (sigma found to relative tolerance ",
                          Num(calibration.relative_tolerance), ")\n", "  sampling rate q = ",
                          Num(q), ", steps T = ", steps, "\n", GridLine(c.guarantee),
                          kAssumptions);
    }
  }
  return absl::InternalError("unknown privacy query");
}

void AddPrivacyCommand(CLI::App& app, std::ostream& out, std::ostream& err) {
  CLI::App* privacy = app.add_subcommand(
      "privacy", "Privacy calculator: epsilon, delta or the noise multiplier for Poisson-sampled "
                 "Gaussian steps (DP-SGD, DP-FedAvg), by the RDP accountant");
  privacy->require_subcommand(1);
  struct Sub {
    const char* name;
    const char* help;
    PrivacyQuery query;
  };
  const Sub subs[] = {
      {"epsilon", "epsilon for a noise multiplier, sampling rate, steps and delta",
       PrivacyQuery::kEpsilon},
      {"delta", "delta for a noise multiplier, sampling rate, steps and epsilon",
       PrivacyQuery::kDelta},
      {"noise", "smallest noise multiplier meeting a target epsilon and delta",
       PrivacyQuery::kNoise},
  };
  for (const Sub& sub : subs) {
    CLI::App* cmd = privacy->add_subcommand(sub.name, sub.help);
    auto args = std::make_shared<PrivacyArgs>();  // owned by the callback, so by the App
    cmd->add_option(std::string(kSamplingRate), args->sampling_rate,
                    "probability q that a record is in a step, in (0, 1]")
        ->required();
    cmd->add_option(std::string(kSteps), args->steps, "number of steps T")->required();
    if (sub.query != PrivacyQuery::kNoise) {
      cmd->add_option(std::string(kNoiseMultiplier), args->noise_multiplier,
                      "noise stddev / clipping norm, > 0")
          ->required();
    }
    if (sub.query != PrivacyQuery::kDelta) {
      cmd->add_option(std::string(kDelta), args->delta, "delta, in (0, 1)")->required();
    }
    if (sub.query != PrivacyQuery::kEpsilon) {
      cmd->add_option(sub.query == PrivacyQuery::kNoise ? "--epsilon,--target-epsilon"
                                                        : "--epsilon",
                      args->epsilon, "epsilon")
          ->required();
    }
    cmd->add_option(std::string(kOrders), args->orders,
                    "comma-separated RDP orders (default: dp_accounting's grid, 1.1..10.9, "
                    "11..63, 128, 256, 512, 1024)");
    cmd->add_flag("--json", args->json, "print one JSON object");
    const PrivacyQuery query = sub.query;
    const std::string name = absl::StrCat("privacy ", sub.name);
    cmd->callback([args, query, name, &out, &err] {
      absl::StatusOr<std::string> result = RunPrivacyQuery(query, *args);
      if (!result.ok()) {
        err << "fedattn " << name << ": " << result.status().message() << "\n";
        throw CLI::RuntimeError(1);
      }
      out << *result;
    });
  }
}

}  // namespace fedattn::cli
