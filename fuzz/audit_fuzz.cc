// Fuzz target: audit-export parsing (fedattn/audit/audit_trail.h), what `fedattn audit verify`
// and a site's receipt check run on a file an auditor was handed: JSON lines, canonical form,
// hash chain, Ed25519 signatures on checkpoints and ledger entries, certificates, and every
// epsilon recomputed from the recorded mechanism. Any text must verify or be refused with a
// status naming a record; what verifies must yield a budget table. Also fed line by line into
// an AuditTrail, as the coordinator replays its own log on start.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_split.h"
#include "fedattn/audit/audit_trail.h"

namespace {

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "audit_fuzz: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto trail = fedattn::audit::VerifyAuditExport(text);
  if (trail.ok()) {
    Check(trail->CheckComplete().ok(), "a verified export that is not complete");
    auto table = trail->BudgetTable();
    Check(table.ok(), "a verified export without a budget table");
    for (const fedattn::audit::LoggedEntry& logged : trail->entries()) {
      (void)trail->BudgetOf(logged.entry.site_name, logged.entry.job_id);
    }
  } else {
    Check(!trail.status().message().empty(), "a refusal without a message");
  }
  fedattn::audit::AuditTrail replay;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (!replay.Add(line).ok()) break;
  }
  return 0;
}
