// `fedattn-agent audit compare`: a site checks the coordinator's record of it (an audit export)
// against its own ledger and the coordinator's signed receipts. It does not trust the export: the
// export is verified, and compared entry by entry even where it does not verify.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fedattn/agent/site_ledger.h"

namespace fedattn::agent {

struct LedgerFinding {
  // "missing": the site's entry is not in the log; "altered": the log's entry differs from the
  // site's; "under-counted": ... and records less epsilon than the site did; "unknown": the log
  // holds an entry of this site that the site never recorded; "unacknowledged": the coordinator
  // has not logged the entry yet (no receipt: it is sent with the next task).
  std::string kind;
  int64_t seq = 0;  // the site's sequence number
  std::string detail;
};

struct LedgerComparison {
  absl::Status export_verification;  // VerifyAuditExport's result
  int64_t entries_matched = 0;
  std::vector<LedgerFinding> findings;
  // True when nothing is missing, altered, under-counted or unknown and the export verifies.
  bool clean() const;
};

// Compares the site's `entries` (its ledger, with receipts) with the export's ledger entries of
// `site`. `ca_pem` checks the export's certificates. Errors only for an unreadable export.
[[nodiscard]] absl::StatusOr<LedgerComparison> CompareLedgerWithExport(const std::vector<SignedLedgerEntry>& entries,
                                                                       absl::string_view site,
                                                                       absl::string_view export_text,
                                                                       absl::string_view ca_pem);

}  // namespace fedattn::agent
