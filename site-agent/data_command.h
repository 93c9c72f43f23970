// `fedattn-agent data split …`: splits one CSV data set into one CSV per site (to stand up a
// federation from a public data set). The work is fedattn::agent::SplitCsvFile; this is the CLI.
#pragma once

#include <CLI/CLI.hpp>

namespace fedattn::agent {

// Adds the `data` subcommand (with `split`) to `app`. As with `train`, the work runs in the
// callback during app.parse() and ends by throwing CLI::Success (status 0) or, after printing
// the error to stderr, CLI::RuntimeError (status 1), so the agent's start-up code never runs.
void AddDataCommand(CLI::App& app);

}  // namespace fedattn::agent
