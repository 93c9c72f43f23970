// `fedattn-agent train --config FILE`: trains one model centrally on one dataset (the
// non-federated baseline). The work is fedattn::models::RunCentralTraining; this is the CLI.
#pragma once

#include <CLI/CLI.hpp>

namespace fedattn::agent {

// Adds the `train` subcommand to `app`. The work runs in the subcommand's callback, during
// app.parse(); it then throws CLI::Success (exit status 0) or, after printing the error to
// stderr, CLI::RuntimeError (status 1), so CLI11_PARSE(app, argc, argv) ends the program either
// way and the agent's start-up code never runs for `train`.
void AddTrainCommand(CLI::App& app);

}  // namespace fedattn::agent
