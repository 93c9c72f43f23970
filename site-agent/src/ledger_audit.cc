#include "fedattn/agent/ledger_audit.h"

#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "fedattn/audit/audit_trail.h"
#include "fedattn/audit/canonical_json.h"
#include "fedattn/common/status_macros.h"

namespace fedattn::agent {
namespace {

std::string Epsilon(double value) { return std::isinf(value) ? "unbounded" : absl::StrFormat("%.10g", value); }

// What the log holds for one of the site's sequence numbers.
struct LoggedCopy {
  int64_t record = 0;
  std::string canonical;
  std::optional<audit::LedgerEntry> entry;
};

}  // namespace

bool LedgerComparison::clean() const {
  if (!export_verification.ok()) return false;
  for (const LedgerFinding& finding : findings) {
    if (finding.kind != "unacknowledged") return false;
  }
  return true;
}

absl::StatusOr<LedgerComparison> CompareLedgerWithExport(const std::vector<SignedLedgerEntry>& entries,
                                                         absl::string_view site, absl::string_view export_text,
                                                         absl::string_view ca_pem) {
  LedgerComparison comparison;
  audit::AuditTrail::Options options;
  if (!ca_pem.empty()) options.ca_pem = std::string(ca_pem);
  comparison.export_verification = audit::VerifyAuditExport(export_text, options).status();

  // Read the export leniently: every line that is a ledger entry of this site, verified or not.
  std::multimap<int64_t, LoggedCopy> logged;
  int64_t line_number = 0;
  for (absl::string_view line : absl::StrSplit(export_text, '\n', absl::SkipEmpty())) {
    const int64_t record = line_number++;
    nlohmann::json json = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
    if (json.is_discarded() || !json.is_object() || json.value("type", "") != "ledger_entry") continue;
    const nlohmann::json& data = json["data"];
    if (!data.is_object() || data.value("site", "") != site || !data.contains("entry")) continue;
    absl::StatusOr<std::string> canonical = audit::CanonicalJson(data["entry"]);
    LoggedCopy copy{record, canonical.ok() ? *canonical : data["entry"].dump(), std::nullopt};
    absl::StatusOr<audit::LedgerEntry> entry = audit::LedgerEntryFromJson(data["entry"]);
    if (entry.ok()) copy.entry = *entry;
    const int64_t seq = data["entry"].value("seq", int64_t{-1});
    logged.emplace(seq, std::move(copy));
  }

  for (const SignedLedgerEntry& mine : entries) {
    const int64_t seq = mine.entry.id;
    const std::string where = absl::StrCat("job '", mine.entry.job_id, "' round ", mine.entry.round);
    auto [begin, end] = logged.equal_range(seq);
    if (begin == end) {
      if (mine.receipt.has_value()) {
        comparison.findings.push_back(
            {"missing", seq,
             absl::StrCat(where, ": not in the log, although the coordinator signed a receipt for it as record ",
                          mine.receipt->log_seq)});
      } else {
        comparison.findings.push_back(
            {"unacknowledged", seq, absl::StrCat(where, ": not sent to the coordinator yet (no receipt)")});
      }
      continue;
    }
    bool matched = false;
    for (auto it = begin; it != end; ++it) {
      const LoggedCopy& copy = it->second;
      if (copy.canonical == mine.canonical) {
        matched = true;
        continue;
      }
      std::string detail = absl::StrCat(where, ": record ", copy.record, " differs from the site's entry");
      std::string kind = "altered";
      if (copy.entry.has_value()) {
        const audit::LedgerEntry& theirs = *copy.entry;
        if (theirs.epsilon_cumulative < mine.entry.epsilon_cumulative ||
            theirs.epsilon_release < mine.entry.epsilon_release) {
          kind = "under-counted";
          absl::StrAppend(&detail, ": the log records epsilon ", Epsilon(theirs.epsilon_release), " (cumulative ",
                          Epsilon(theirs.epsilon_cumulative), "), the site spent ", Epsilon(mine.entry.epsilon_release),
                          " (cumulative ", Epsilon(mine.entry.epsilon_cumulative), ")");
        } else if (theirs.decision != mine.entry.decision) {
          absl::StrAppend(&detail, ": the decision differs");
        } else if (theirs.mechanism.noise_multiplier != mine.entry.mechanism.noise_multiplier ||
                   theirs.mechanism.sampling_rate != mine.entry.mechanism.sampling_rate ||
                   theirs.mechanism.steps != mine.entry.mechanism.steps) {
          absl::StrAppend(&detail, ": the mechanism's parameters differ");
        }
      }
      comparison.findings.push_back({kind, seq, detail});
    }
    if (matched) ++comparison.entries_matched;
    logged.erase(seq);
  }
  for (const auto& [seq, copy] : logged) {
    comparison.findings.push_back(
        {"unknown", seq,
         absl::StrCat("record ", copy.record, " holds an entry ", seq, " of this site that its ledger does not have")});
  }
  return comparison;
}

}  // namespace fedattn::agent
