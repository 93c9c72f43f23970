// Sends the site's ledger entries that the coordinator has not acknowledged yet, oldest first,
// and keeps the coordinator's signed receipt for each (docs/formats/ledger.md, "Order of
// operations at the site"). Run after every ledger write and before any update is sent, so the
// coordinator's audit log holds the site's entries in order, without gaps.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "fedattn/agent/coordinator_link.h"
#include "fedattn/agent/site_ledger.h"

namespace fedattn::agent {

// Each receipt must verify under a coordinator certificate issued by `ca_pem`, for exactly the
// entry sent; otherwise nothing more is sent and the error says why (the entry stays
// unacknowledged and is sent again next time).
[[nodiscard]] absl::Status SyncLedger(SiteLedger& ledger, CoordinatorLink& link, const std::string& site_name,
                                      absl::string_view ca_pem);

}  // namespace fedattn::agent
