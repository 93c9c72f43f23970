// A CoordinatorLink whose RecordLedgerEntry is a real coordinator AuditLog in process (the other
// calls do nothing): the coordinator's side of ledger sync, without a network.
#pragma once

#include <string>

#include "fedattn/agent/coordinator_link.h"
#include "fedattn/audit/audit_log.h"

namespace fedattn::agent::testing {

class AuditLogLink : public CoordinatorLink {
 public:
  // `site_pem` is the certificate the site would present over TLS.
  AuditLogLink(audit::AuditLog* log, std::string site_pem) : log_(log), site_pem_(std::move(site_pem)) {}

  absl::StatusOr<v1::RegisterResponse> Register(const v1::RegisterRequest&) override { return v1::RegisterResponse(); }
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest&) override {
    return v1::HeartbeatResponse();
  }
  absl::StatusOr<v1::PullTaskResponse> PullTask(const v1::PullTaskRequest&) override { return v1::PullTaskResponse(); }
  absl::Status Explain(const absl::Status& failure) override { return failure; }
  absl::StatusOr<v1::RecordLedgerEntryResponse> RecordLedgerEntry(const v1::RecordLedgerEntryRequest& request) override {
    ++calls;
    if (fail_at == calls) return absl::UnavailableError("connection reset");
    auto receipt = log_->RecordLedgerEntry(request.site_name(), site_pem_, request.entry_json(), request.signature());
    if (!receipt.ok()) return receipt.status();
    v1::RecordLedgerEntryResponse response;
    response.set_receipt_json(receipt->json);
    response.set_receipt_signature(receipt->signature);
    response.set_log_seq(receipt->log_seq);
    response.set_coordinator_certificate_pem(log_->certificate_pem());
    return response;
  }

  int calls = 0;    // RecordLedgerEntry calls so far
  int fail_at = 0;  // the call that fails with UNAVAILABLE (0: none)

 private:
  audit::AuditLog* log_;
  std::string site_pem_;
};

}  // namespace fedattn::agent::testing
