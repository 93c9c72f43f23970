#include "fedattn/audit/audit_trail.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "fedattn/audit/canonical_json.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/crypto/certificate.h"

namespace fedattn::audit {
namespace {

using nlohmann::json;

absl::StatusOr<std::string> StringField(const json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end() || !it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat("field '", name, "' is missing or not a string"));
  }
  return it->get<std::string>();
}

absl::StatusOr<int64_t> IntegerField(const json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end() || !it->is_number_integer()) {
    return absl::InvalidArgumentError(absl::StrCat("field '", name, "' is missing or not an integer"));
  }
  return it->get<int64_t>();
}

// |recorded - recomputed| <= tolerance · |recomputed| (both +inf counts as equal).
bool SameEpsilon(double recorded, double recomputed) {
  if (std::isinf(recorded) || std::isinf(recomputed)) return recorded == recomputed;
  return std::fabs(recorded - recomputed) <= kEpsilonTolerance * std::max(std::fabs(recomputed), 1e-300);
}

std::string FormatEpsilon(double epsilon) {
  return std::isinf(epsilon) ? std::string("unbounded") : absl::StrFormat("%.10g", epsilon);
}

}  // namespace

std::string DescribeMechanism(const LedgerMechanism& m) {
  if (m.unbounded()) return "none";
  std::string text = absl::StrFormat("%s q=%.4g sigma=%.4g C=%.4g steps=%d", m.name, m.sampling_rate,
                                     m.noise_multiplier, m.max_grad_norm, m.steps);
  if (m.client_clip_norm > 0) {
    absl::StrAppendFormat(&text, " +client S=%.4g z=%.4g n=%d", m.client_clip_norm, m.client_noise_multiplier,
                          m.client_contributors);
  }
  return text;
}

AuditTrail::AuditTrail(Options options) : options_(std::move(options)) {}

absl::StatusOr<std::string> AuditTrail::NextLine(absl::string_view type, json data, int64_t time_unix_ms) const {
  json record = {{"seq", next_seq_},
                 {"time_unix_ms", time_unix_ms},
                 {"type", std::string(type)},
                 {"data", std::move(data)},
                 {"prev", head_}};
  ASSIGN_OR_RETURN(std::string unhashed, CanonicalJson(record));
  record["hash"] = Sha256Hex(unhashed);
  return CanonicalJson(record);
}

absl::StatusOr<std::string> AuditTrail::CheckpointMessage() const {
  if (next_seq_ == 0) return absl::FailedPreconditionError("an empty audit log has nothing to sign");
  return CanonicalJson(json{{"covers_seq", next_seq_ - 1}, {"head", head_}, {"log", genesis_}});
}

absl::StatusOr<AuditRecord> AuditTrail::Add(absl::string_view line) {
  const int64_t number = next_seq_;
  auto fail = [number](const absl::Status& status) {
    return absl::Status(status.code(), absl::StrCat("record ", number, ": ", status.message()));
  };
  absl::StatusOr<json> parsed = ParseCanonicalJson(line);
  if (!parsed.ok()) return fail(parsed.status());
  AuditRecord record;
  {
    const json& j = *parsed;
    if (!j.is_object()) return fail(absl::InvalidArgumentError("not a JSON object"));
    absl::StatusOr<int64_t> seq = IntegerField(j, "seq");
    absl::StatusOr<int64_t> time = IntegerField(j, "time_unix_ms");
    absl::StatusOr<std::string> type = StringField(j, "type");
    absl::StatusOr<std::string> prev = StringField(j, "prev");
    absl::StatusOr<std::string> hash = StringField(j, "hash");
    for (const absl::Status& status : {seq.status(), time.status(), type.status(), prev.status(), hash.status()}) {
      if (!status.ok()) return fail(status);
    }
    if (!j.contains("data") || !j["data"].is_object()) return fail(absl::InvalidArgumentError("'data' is not an object"));
    if (j.size() != 6) return fail(absl::InvalidArgumentError("a record has exactly seq, time_unix_ms, type, data, prev, hash"));
    record = AuditRecord{*seq, *time, *type, j["data"], *prev, *hash};
    if (record.seq != next_seq_) {
      return fail(absl::DataLossError(absl::StrCat("sequence number is ", record.seq, ", expected ", next_seq_,
                                                   " (a record was deleted, inserted or reordered)")));
    }
    if (record.prev != head_) {
      return fail(absl::DataLossError("'prev' is not the hash of the previous record (the chain is broken)"));
    }
    json unhashed = j;
    unhashed.erase("hash");
    ASSIGN_OR_RETURN(std::string canonical, CanonicalJson(unhashed));
    if (Sha256Hex(canonical) != record.hash) {
      return fail(absl::DataLossError("its hash does not match its content (the record was altered)"));
    }
  }
  if (absl::Status status = CheckRecord(record); !status.ok()) return fail(status);
  head_ = record.hash;
  if (next_seq_ == 0) genesis_ = record.hash;
  last_type_ = record.type;
  ++next_seq_;
  return record;
}

absl::Status AuditTrail::CheckCertificate(absl::string_view pem, absl::string_view expected_role,
                                          absl::string_view name, int64_t time_unix_ms, crypto::PKeyPtr* public_key,
                                          std::string* fingerprint) const {
  ASSIGN_OR_RETURN(crypto::X509Ptr cert, crypto::CertificateFromPem(pem));
  ASSIGN_OR_RETURN(crypto::CertificateInfo info, crypto::InspectCertificate(cert.get()));
  if (crypto::RoleName(info.role) != expected_role || info.name != name) {
    return absl::PermissionDeniedError(absl::StrCat("the certificate is of ", crypto::RoleName(info.role), " '",
                                                    info.name, "', not of ", expected_role, " '", name, "'"));
  }
  if (options_.ca_pem.has_value()) {
    ASSIGN_OR_RETURN(crypto::X509Ptr ca, crypto::CertificateFromPem(*options_.ca_pem));
    RETURN_IF_ERROR(crypto::VerifyCertificate(cert.get(), ca.get(), absl::FromUnixMillis(time_unix_ms)));
  }
  EVP_PKEY* key = X509_get0_pubkey(cert.get());
  if (key == nullptr) return absl::InvalidArgumentError("the certificate has no public key");
  EVP_PKEY_up_ref(key);
  public_key->reset(key);
  *fingerprint = info.fingerprint;
  return absl::OkStatus();
}

absl::Status AuditTrail::CheckRecord(const AuditRecord& record) {
  const json& data = record.data;
  if (record.seq == 0) {
    if (record.type != "log_opened") return absl::InvalidArgumentError("the first record must be 'log_opened'");
    ASSIGN_OR_RETURN(std::string format, StringField(data, "format"));
    if (format != kAuditFormat) {
      return absl::InvalidArgumentError(absl::StrCat("format '", format, "' is not ", kAuditFormat));
    }
    ASSIGN_OR_RETURN(std::string name, StringField(data, "coordinator"));
    ASSIGN_OR_RETURN(std::string pem, StringField(data, "certificate_pem"));
    crypto::PKeyPtr key;
    std::string fingerprint;
    RETURN_IF_ERROR(CheckCertificate(pem, "coordinator", name, record.time_unix_ms, &key, &fingerprint));
    coordinator_key_ = std::move(key);
    return absl::OkStatus();
  }
  if (record.type == "log_opened") return absl::InvalidArgumentError("'log_opened' may only be the first record");
  if (record.type == "checkpoint") {
    ASSIGN_OR_RETURN(int64_t covers, IntegerField(data, "covers_seq"));
    ASSIGN_OR_RETURN(std::string head, StringField(data, "head"));
    ASSIGN_OR_RETURN(std::string signature, StringField(data, "signature"));
    if (covers != record.seq - 1 || head != head_) {
      return absl::DataLossError("the checkpoint does not cover the record before it");
    }
    ASSIGN_OR_RETURN(std::string message, CheckpointMessage());
    if (absl::Status status = VerifyCanonical(coordinator_key_.get(), kCheckpointDomain, message, signature);
        !status.ok()) {
      return absl::UnauthenticatedError(absl::StrCat("the coordinator's checkpoint signature is invalid: ",
                                                     status.message()));
    }
    return absl::OkStatus();
  }
  if (record.type == "site_certificate") {
    ASSIGN_OR_RETURN(std::string site, StringField(data, "site"));
    ASSIGN_OR_RETURN(std::string pem, StringField(data, "certificate_pem"));
    ASSIGN_OR_RETURN(std::string recorded, StringField(data, "certificate_sha256"));
    crypto::PKeyPtr key;
    std::string fingerprint;
    RETURN_IF_ERROR(CheckCertificate(pem, "site", site, record.time_unix_ms, &key, &fingerprint));
    if (fingerprint != recorded) return absl::DataLossError("certificate_sha256 is not the certificate's fingerprint");
    SiteState& state = sites_[site];
    state.certificate_sha256 = fingerprint;
    state.public_key = std::move(key);
    return absl::OkStatus();
  }
  if (record.type == "ledger_entry") {
    LoggedEntry logged;
    RETURN_IF_ERROR(CheckLedgerEntry(record, &logged));
    return absl::OkStatus();
  }
  if (record.type == "round_committed") {
    RETURN_IF_ERROR(StringField(data, "job").status());
    RETURN_IF_ERROR(IntegerField(data, "round").status());
    RETURN_IF_ERROR(StringField(data, "model_sha256").status());
  }
  return absl::OkStatus();  // other events: free-form objects, covered by the chain
}

// Checks a ledger_entry record and, when everything holds, adds it to the site's history.
absl::Status AuditTrail::CheckLedgerEntry(const AuditRecord& record, LoggedEntry* logged) {
  const json& data = record.data;
  ASSIGN_OR_RETURN(std::string site, StringField(data, "site"));
  ASSIGN_OR_RETURN(std::string signature, StringField(data, "signature"));
  if (!data.contains("entry")) return absl::InvalidArgumentError("the ledger entry is missing");
  absl::StatusOr<LedgerEntry> parsed = LedgerEntryFromJson(data["entry"]);
  if (!parsed.ok()) return absl::InvalidArgumentError(absl::StrCat("ledger entry: ", parsed.status().message()));
  const LedgerEntry& e = *parsed;
  const std::string where = absl::StrCat("site '", site, "' ledger entry ", e.id, " (job '", e.job_id, "' round ",
                                         e.round, ")");
  auto state_it = sites_.find(site);
  if (state_it == sites_.end() || state_it->second.public_key == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(where, ": no certificate of the site was logged before it"));
  }
  SiteState& state = state_it->second;
  if (e.site_name != site || e.site_certificate_sha256 != state.certificate_sha256) {
    return absl::PermissionDeniedError(absl::StrCat(where, ": the entry names site '", e.site_name,
                                                    "' with certificate ", e.site_certificate_sha256.substr(0, 16),
                                                    ", not the logged certificate of the site"));
  }
  ASSIGN_OR_RETURN(std::string canonical, CanonicalJson(data["entry"]));
  if (absl::Status status = VerifyCanonical(state.public_key.get(), kLedgerEntryDomain, canonical, signature);
      !status.ok()) {
    return absl::UnauthenticatedError(absl::StrCat(where, ": the site's signature is invalid: ", status.message()));
  }
  if (e.id != state.last_seq + 1) {
    return absl::DataLossError(absl::StrCat(where, ": the site's ledger sequence goes from ", state.last_seq, " to ",
                                            e.id, " (entries are missing, repeated or reordered)"));
  }
  if (e.accountant != kLedgerAccountant || e.accountant_version != kLedgerAccountantVersion ||
      e.order_grid != kLedgerOrderGrid) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": accountant '", e.accountant, "' version '",
                                                   e.accountant_version, "' grid '", e.order_grid,
                                                   "' is not one this verifier can recompute"));
  }
  RETURN_IF_ERROR(CheckDelta(e.delta, absl::StrCat(where, ": delta")));
  RETURN_IF_ERROR(CheckDelta(e.cap_delta, absl::StrCat(where, ": cap delta")));
  // Recompute both epsilons from the recorded parameters (docs/formats/ledger.md).
  ASSIGN_OR_RETURN(double release, state.history.Alone(e.delta, e.mechanism));
  ASSIGN_OR_RETURN(double cumulative, state.history.Epsilon(e.cap_delta, &e.mechanism));
  if (!SameEpsilon(e.epsilon_release, release)) {
    return absl::DataLossError(absl::StrCat(where, ": recorded epsilon ", FormatEpsilon(e.epsilon_release),
                                            " but its mechanism gives ", FormatEpsilon(release)));
  }
  if (!SameEpsilon(e.epsilon_cumulative, cumulative)) {
    return absl::DataLossError(absl::StrCat(
        where, ": recorded cumulative epsilon ", FormatEpsilon(e.epsilon_cumulative), " but the site's history gives ",
        FormatEpsilon(cumulative), e.epsilon_cumulative < cumulative ? " (under-counted)" : " (over-counted)"));
  }
  const bool released = e.decision == LedgerDecision::kReleased;
  if (released && cumulative > e.epsilon_cap) {
    return absl::FailedPreconditionError(absl::StrCat(where, ": released at epsilon ", FormatEpsilon(cumulative),
                                                      ", above the site's cap ", FormatEpsilon(e.epsilon_cap)));
  }
  if (!released && e.reason.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": a refusal without reason"));
  if (released && releases_.contains({site, e.job_id, e.round})) {
    return absl::DataLossError(absl::StrCat(where, ": the round was already released once"));
  }

  // Everything holds: add it.
  JobState& job = jobs_[{site, e.job_id}];
  if (released) {
    RETURN_IF_ERROR(state.history.Add(e.mechanism));
    RETURN_IF_ERROR(job.history.Add(e.mechanism));
    ++job.releases;
    job.rounds.push_back(e.round);
    job.delta = e.delta;
    job.last = e.mechanism;
    releases_.insert({site, e.job_id, e.round});
  } else {
    ++job.refusals;
  }
  state.last_seq = e.id;
  state.cap = e.epsilon_cap;
  state.cap_delta = e.cap_delta;
  logged->log_seq = record.seq;
  logged->entry = e;
  logged->entry_sha256 = Sha256Hex(canonical);
  entries_.push_back(*logged);
  return absl::OkStatus();
}

absl::Status AuditTrail::CheckComplete() const {
  if (next_seq_ == 0) return absl::FailedPreconditionError("the audit log is empty");
  if (last_type_ != "checkpoint") {
    return absl::FailedPreconditionError(absl::StrCat("record ", next_seq_ - 1,
                                                      ": the log does not end with a signed checkpoint (the records "
                                                      "after the last checkpoint are not covered by a signature)"));
  }
  return absl::OkStatus();
}

std::vector<const LoggedEntry*> AuditTrail::EntriesOf(absl::string_view site) const {
  std::vector<const LoggedEntry*> out;
  for (const LoggedEntry& logged : entries_) {
    if (logged.entry.site_name == site) out.push_back(&logged);
  }
  return out;
}

const LoggedEntry* AuditTrail::FindEntry(absl::string_view site, int64_t seq) const {
  for (const LoggedEntry& logged : entries_) {
    if (logged.entry.site_name == site && logged.entry.id == seq) return &logged;
  }
  return nullptr;
}

std::optional<std::string> AuditTrail::SiteCertificate(absl::string_view site) const {
  const auto it = sites_.find(site);
  if (it == sites_.end()) return std::nullopt;
  return it->second.certificate_sha256;
}

bool AuditTrail::HasRelease(absl::string_view site, absl::string_view job, int64_t round) const {
  return releases_.contains({std::string(site), std::string(job), round});
}

absl::StatusOr<std::optional<AuditTrail::Budget>> AuditTrail::BudgetOf(absl::string_view site,
                                                                       absl::string_view job) const {
  const auto it = sites_.find(site);
  if (it == sites_.end() || it->second.last_seq == 0) return std::nullopt;
  const SiteState& state = it->second;
  Budget budget;
  budget.cap = state.cap;
  budget.cap_delta = state.cap_delta;
  ASSIGN_OR_RETURN(budget.spent, state.history.Epsilon(state.cap_delta));
  const auto job_it = jobs_.find({std::string(site), std::string(job)});
  if (job_it != jobs_.end() && job_it->second.last.has_value()) {
    ASSIGN_OR_RETURN(budget.after_next_round, state.history.Epsilon(state.cap_delta, &*job_it->second.last));
  }
  return budget;
}

absl::StatusOr<std::vector<BudgetRow>> AuditTrail::BudgetTable() const {
  std::vector<BudgetRow> rows;
  for (const auto& [key, job] : jobs_) {
    const SiteState& site = sites_.at(key.first);
    BudgetRow row;
    row.site = key.first;
    row.job = key.second;
    row.releases = job.releases;
    row.refusals = job.refusals;
    row.rounds = job.rounds;
    row.job_delta = job.delta;
    if (job.releases > 0) {
      ASSIGN_OR_RETURN(row.job_epsilon, job.history.Epsilon(job.delta));
    }
    row.cap = site.cap;
    row.cap_delta = site.cap_delta;
    ASSIGN_OR_RETURN(row.site_epsilon, site.history.Epsilon(site.cap_delta));
    row.mechanism = job.last.has_value() ? DescribeMechanism(*job.last) : "-";
    rows.push_back(std::move(row));
  }
  return rows;
}

absl::StatusOr<AuditTrail> VerifyAuditExport(absl::string_view text, AuditTrail::Options options) {
  AuditTrail trail(std::move(options));
  if (!text.empty() && text.back() != '\n') {
    return absl::DataLossError(absl::StrCat("record ", std::count(text.begin(), text.end(), '\n'),
                                            ": the export is truncated (its last line has no newline)"));
  }
  if (!text.empty()) text.remove_suffix(1);
  if (!text.empty()) {
    // Every line is a record: an empty line is a change too.
    for (absl::string_view line : absl::StrSplit(text, '\n')) RETURN_IF_ERROR(trail.Add(line).status());
  }
  RETURN_IF_ERROR(trail.CheckComplete());
  return trail;
}

}  // namespace fedattn::audit
