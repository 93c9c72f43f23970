// `fedattn-agent audit compare`: the site checks the coordinator's audit export against its own
// ledger (site-agent/include/fedattn/agent/ledger_audit.h). Like the other subcommands it runs in
// its callback and ends by throwing CLI::Success (status 0: everything matches) or
// CLI::RuntimeError (status 1: a finding, or an error).
#pragma once

#include "CLI/CLI.hpp"

namespace fedattn::agent {

void AddAuditCommand(CLI::App& app);

}  // namespace fedattn::agent
