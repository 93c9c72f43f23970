// `fedattn privacy`: the privacy calculator privacy officers run before any job (in the spirit of
// TF Privacy's compute_dp_sgd_privacy), on the RDP accountant of fedattn/dp.
//
//   fedattn privacy epsilon --sampling-rate Q --noise-multiplier S --steps T --delta D
//   fedattn privacy delta   --sampling-rate Q --noise-multiplier S --steps T --epsilon E
//   fedattn privacy noise   --sampling-rate Q --steps T --delta D --epsilon E (or --target-epsilon)
// each with [--orders 1.5,2,4,...] [--json]. The JSON form is one object on one line with at
// least epsilon, delta, optimal_order and orders (and noise_multiplier).
#pragma once

#include <iostream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"

namespace fedattn::cli {

enum class PrivacyQuery { kEpsilon, kDelta, kNoise };

// Flag values as typed; RunPrivacyQuery parses and checks them. Empty means "not given".
struct PrivacyArgs {
  std::string sampling_rate;
  std::string noise_multiplier;
  std::string steps;
  std::string delta;
  std::string epsilon;
  std::string orders;  // comma-separated; empty: the default grid
  bool json = false;
};

// Runs one query and returns what to print (text, or one JSON line, newline-terminated).
// Errors: InvalidArgument naming the flag for a missing, non-numeric or out-of-range value;
// OutOfRange for an infeasible noise target (below the grid's ε floor or needing too much noise).
[[nodiscard]] absl::StatusOr<std::string> RunPrivacyQuery(PrivacyQuery query,
                                                          const PrivacyArgs& args);

// Registers `privacy` and its three subcommands on `app`. Results go to `out`; errors are
// written to `err` and end the command with CLI::RuntimeError(1), as the other commands do.
void AddPrivacyCommand(CLI::App& app, std::ostream& out = std::cout,
                       std::ostream& err = std::cerr);

}  // namespace fedattn::cli
