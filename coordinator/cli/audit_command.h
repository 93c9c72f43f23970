// `fedattn audit privacy|export|verify`: the privacy officer's view of the coordinator's audit log
// (docs/formats/audit-log.md), checked before anything is shown.
#pragma once

#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "fedattn/audit/audit_trail.h"
#include "nlohmann/json.hpp"

namespace fedattn::cli {

void AddAuditCommands(CLI::App& app);

// The budget table (rows filtered by job and site when not empty) and its --json form.
std::string FormatBudgetTable(const std::vector<audit::BudgetRow>& rows);
nlohmann::json BudgetTableJson(const std::vector<audit::BudgetRow>& rows);
std::vector<audit::BudgetRow> FilterBudgetRows(std::vector<audit::BudgetRow> rows, const std::string& job,
                                               const std::string& site);

}  // namespace fedattn::cli
