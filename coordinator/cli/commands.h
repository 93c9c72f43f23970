// Subcommands of the operator CLI `fedattn`. Each Add*Command registers its flags and a callback
// that prints the result, or the error on stderr and exits non-zero (CLI::RuntimeError).
#pragma once

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "fedattn/coordinator/federation_config.h"
#include "fedattn/v1/fedattn.pb.h"
#include "nlohmann/json.hpp"

namespace fedattn::cli {

void AddProvisionCommand(CLI::App& app);
void AddStatusCommand(CLI::App& app);

// Prints `status`'s message on stderr and ends the command with exit code 1 unless it is OK.
void ExitOnError(const absl::Status& status, absl::string_view command);

// The `fedattn status` table and its --json form (exposed for tests).
std::string FormatStatusTable(const v1::GetStatusResponse& status);
nlohmann::json StatusToJson(const v1::GetStatusResponse& status);

// `fedattn provision --json`: {"federation", "ca": OUT/ca, "kits": [{"party", "role", "path"}]}.
nlohmann::json ProvisionToJson(const coordinator::FederationConfig& config, const std::string& out);

}  // namespace fedattn::cli
