// `fedattn-agent train --config FILE`: trains one model centrally on one dataset (the
// non-federated baseline). The work is fedattn::models::RunCentralTraining; this is the CLI.
#pragma once

#include <CLI/CLI.hpp>

namespace fedattn::agent {

// Adds the `train` subcommand to `app`. On failure the command prints the error to stderr and
// exits with status 1 (through CLI::RuntimeError).
void AddTrainCommand(CLI::App& app);

}  // namespace fedattn::agent
