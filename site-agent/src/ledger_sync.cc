#include "fedattn/agent/ledger_sync.h"

#include "absl/strings/str_cat.h"
#include "fedattn/audit/audit_log.h"
#include "fedattn/common/logging.h"
#include "fedattn/common/status_macros.h"

namespace fedattn::agent {

absl::Status SyncLedger(SiteLedger& ledger, CoordinatorLink& link, const std::string& site_name,
                        absl::string_view ca_pem) {
  ASSIGN_OR_RETURN(std::vector<SignedLedgerEntry> pending, ledger.SignedEntries(/*unacknowledged_only=*/true));
  for (const SignedLedgerEntry& entry : pending) {
    if (entry.signature.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("ledger entry ", entry.entry.id, " is not signed (the ledger was opened without the site's key)"));
    }
    v1::RecordLedgerEntryRequest request;
    request.set_site_name(site_name);
    request.set_entry_json(entry.canonical);
    request.set_signature(entry.signature);
    absl::StatusOr<v1::RecordLedgerEntryResponse> response = link.RecordLedgerEntry(request);
    if (!response.ok()) {
      return absl::Status(response.status().code(), absl::StrCat("the coordinator did not log ledger entry ",
                                                                 entry.entry.id, ": ", response.status().message()));
    }
    const audit::Receipt receipt{response->receipt_json(), response->receipt_signature(),
                                 static_cast<int64_t>(response->log_seq())};
    if (absl::Status valid = audit::VerifyReceipt(receipt, response->coordinator_certificate_pem(), ca_pem, site_name,
                                                  audit::Sha256Hex(entry.canonical));
        !valid.ok()) {
      return absl::UnauthenticatedError(
          absl::StrCat("the coordinator's receipt for ledger entry ", entry.entry.id, " is not valid: ", valid.message()));
    }
    RETURN_IF_ERROR(ledger.StoreReceipt(entry.entry.id, receipt, response->coordinator_certificate_pem()));
    spdlog::info("ledger entry {} (job '{}' round {}, {}) logged by the coordinator as record {}", entry.entry.id,
                 entry.entry.job_id, entry.entry.round,
                 entry.entry.decision == LedgerDecision::kReleased ? "released" : "refused", receipt.log_seq);
  }
  return absl::OkStatus();
}

}  // namespace fedattn::agent
