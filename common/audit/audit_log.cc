#include "fedattn/audit/audit_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "fedattn/audit/canonical_json.h"
#include "fedattn/common/failpoint.h"
#include "fedattn/common/files.h"
#include "fedattn/common/logging.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/crypto/certificate.h"

namespace fedattn::audit {
namespace {

using nlohmann::json;

absl::Status Errno(absl::string_view what, const std::filesystem::path& path) {
  return absl::InternalError(absl::StrCat("cannot ", what, " ", path.string(), ": ", std::strerror(errno)));
}

absl::Status WriteAll(int fd, absl::string_view bytes, const std::filesystem::path& path) {
  while (!bytes.empty()) {
    const ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return Errno("write the audit log", path);
    }
    bytes.remove_prefix(static_cast<size_t>(written));
  }
  if (::fdatasync(fd) != 0) return Errno("fsync the audit log", path);
  return absl::OkStatus();
}

}  // namespace

absl::Status VerifyReceipt(const Receipt& receipt, absl::string_view coordinator_certificate_pem,
                           absl::string_view ca_pem, absl::string_view site, absl::string_view entry_sha256) {
  ASSIGN_OR_RETURN(crypto::X509Ptr cert, crypto::CertificateFromPem(coordinator_certificate_pem));
  ASSIGN_OR_RETURN(crypto::CertificateInfo info, crypto::InspectCertificate(cert.get()));
  if (info.role != crypto::PartyRole::kCoordinator) {
    return absl::UnauthenticatedError(absl::StrCat("the receipt's certificate is of ", crypto::RoleName(info.role),
                                                   " '", info.name, "', not of a coordinator"));
  }
  if (!ca_pem.empty()) {
    ASSIGN_OR_RETURN(crypto::X509Ptr ca, crypto::CertificateFromPem(ca_pem));
    RETURN_IF_ERROR(crypto::VerifyCertificate(cert.get(), ca.get(), absl::Now()));
  }
  RETURN_IF_ERROR(VerifyCanonical(X509_get0_pubkey(cert.get()), kReceiptDomain, receipt.json, receipt.signature));
  ASSIGN_OR_RETURN(json parsed, ParseCanonicalJson(receipt.json));
  if (parsed.value("format", "") != kReceiptFormat || parsed.value("site", "") != site ||
      parsed.value("entry_sha256", "") != entry_sha256) {
    return absl::InvalidArgumentError("the receipt is not for this entry of this site");
  }
  return absl::OkStatus();
}

AuditLog::AuditLog(std::filesystem::path path, Identity identity, const Clock* clock, int fd)
    : path_(std::move(path)),
      identity_(std::move(identity)),
      clock_(clock),
      fd_(fd),
      trail_(AuditTrail::Options{.ca_pem = identity_.ca_pem.empty() ? std::nullopt
                                                                    : std::optional<std::string>(identity_.ca_pem)}) {}

AuditLog::~AuditLog() {
  absl::MutexLock lock(&mu_);
  if (fd_ >= 0) ::close(fd_);
}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(const std::filesystem::path& path, Identity identity,
                                                         const Clock* clock) {
  RETURN_IF_ERROR(EnsureDirectory(path.parent_path(), 0700));
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("open", path);
  std::unique_ptr<AuditLog> log(new AuditLog(path, std::move(identity), clock, fd));
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  absl::MutexLock lock(&log->mu_);
  if (!text.empty() && text.back() != '\n') {
    // A write cut short by a crash: it was never fsync'd and acknowledged, so nothing is lost.
    const size_t keep = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
    spdlog::warn("audit log {}: cutting off a last record cut short by a crash ({} bytes)", path.string(),
                 text.size() - keep);
    if (::ftruncate(fd, static_cast<off_t>(keep)) != 0 || ::fsync(fd) != 0) return Errno("truncate", path);
    text.resize(keep);
  }
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    absl::StatusOr<AuditRecord> record = log->trail_.Add(absl::string_view(text).substr(start, end - start));
    if (!record.ok()) {
      return absl::DataLossError(absl::StrCat("audit log ", path.string(), " does not verify: ",
                                              record.status().message()));
    }
    if (record->type == "ledger_entry") log->record_times_[record->seq] = record->time_unix_ms;
    log->Track(*record);
    start = end + 1;
  }
  if (log->trail_.size() == 0) {
    RETURN_IF_ERROR(log->AppendLocked("log_opened", json{{"format", kAuditFormat},
                                                         {"coordinator", log->identity_.coordinator},
                                                         {"certificate_pem", log->identity_.certificate_pem}})
                        .status());
    RETURN_IF_ERROR(log->CheckpointLocked());
  }
  return log;
}

absl::StatusOr<AuditRecord> AuditLog::AppendLocked(absl::string_view type, json data) {
  RETURN_IF_ERROR(broken_);
  const int64_t now = absl::ToUnixMillis(clock_->Now());
  ASSIGN_OR_RETURN(std::string line, trail_.NextLine(type, std::move(data), now));
  // The trail checks the record exactly as a verifier will, then the line is made durable.
  ASSIGN_OR_RETURN(AuditRecord record, trail_.Add(line));
  line.push_back('\n');
  if (absl::Status written = WriteAll(fd_, line, path_); !written.ok()) {
    broken_ = written;  // memory is ahead of the file: refuse everything from now on
    return written;
  }
  return record;
}

void AuditLog::Track(const AuditRecord& record) {
  const auto job = record.data.find("job");
  if (job != record.data.end() && job->is_string()) {
    if (record.type == "job_submitted") submitted_jobs_.insert(job->get<std::string>());
    if (record.type == "job_finished") finished_jobs_.insert(job->get<std::string>());
  }
  if (record.type != "round_committed" && record.type != "round_abandoned") return;
  const auto round = record.data.find("round");
  if (job == record.data.end() || !job->is_string() || round == record.data.end() || !round->is_number_integer()) {
    return;
  }
  std::vector<int64_t>& rounds = committed_[job->get<std::string>()];
  if (record.type == "round_committed") {
    rounds.push_back(round->get<int64_t>());
  } else {
    rounds.erase(std::remove(rounds.begin(), rounds.end(), round->get<int64_t>()), rounds.end());
  }
}

absl::StatusOr<int64_t> AuditLog::Append(absl::string_view type, json data) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(AuditRecord record, AppendLocked(type, std::move(data)));
  Track(record);
  return record.seq;
}

absl::Status AuditLog::CheckpointLocked() {
  if (trail_.ends_with_checkpoint()) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::string message, trail_.CheckpointMessage());
  ASSIGN_OR_RETURN(std::string signature, SignCanonical(identity_.signing_key.get(), kCheckpointDomain, message));
  return AppendLocked("checkpoint",
                      json{{"covers_seq", trail_.size() - 1}, {"head", trail_.head()}, {"signature", signature}})
      .status();
}

absl::Status AuditLog::Checkpoint() {
  absl::MutexLock lock(&mu_);
  return CheckpointLocked();
}

absl::StatusOr<Receipt> AuditLog::ReceiptFor(const LoggedEntry& logged, int64_t time_unix_ms) const {
  Receipt receipt;
  receipt.log_seq = logged.log_seq;
  ASSIGN_OR_RETURN(receipt.json, CanonicalJson(json{{"format", kReceiptFormat},
                                                    {"site", logged.entry.site_name},
                                                    {"entry_sha256", logged.entry_sha256},
                                                    {"log_seq", logged.log_seq},
                                                    {"time_unix_ms", time_unix_ms}}));
  ASSIGN_OR_RETURN(receipt.signature, SignCanonical(identity_.signing_key.get(), kReceiptDomain, receipt.json));
  return receipt;
}

absl::StatusOr<Receipt> AuditLog::RecordLedgerEntry(absl::string_view site, absl::string_view certificate_pem,
                                                    absl::string_view canonical_entry,
                                                    absl::string_view signature_hex) {
  ASSIGN_OR_RETURN(json entry_json, ParseCanonicalJson(canonical_entry));
  ASSIGN_OR_RETURN(LedgerEntry entry, LedgerEntryFromJson(entry_json));
  ASSIGN_OR_RETURN(crypto::CertificateInfo info, crypto::InspectCertificatePem(certificate_pem));
  absl::MutexLock lock(&mu_);
  if (const LoggedEntry* logged = trail_.FindEntry(site, entry.id); logged != nullptr) {
    if (logged->entry_sha256 != Sha256Hex(canonical_entry)) {
      return absl::AlreadyExistsError(absl::StrCat("site '", site, "' already logged a different ledger entry ",
                                                   entry.id, " (record ", logged->log_seq, ")"));
    }
    return ReceiptFor(*logged, record_times_.at(logged->log_seq));
  }
  if (trail_.SiteCertificate(site) != info.fingerprint) {
    RETURN_IF_ERROR(AppendLocked("site_certificate", json{{"site", std::string(site)},
                                                          {"certificate_pem", std::string(certificate_pem)},
                                                          {"certificate_sha256", info.fingerprint}})
                        .status());
  }
  // Checked in full (signature, sequence, both epsilons) by the trail before it is written.
  Failpoint("coordinator.before_ledger_append");
  ASSIGN_OR_RETURN(AuditRecord record,
                   AppendLocked("ledger_entry", json{{"site", std::string(site)},
                                                     {"entry", std::move(entry_json)},
                                                     {"signature", std::string(signature_hex)}}));
  record_times_[record.seq] = record.time_unix_ms;
  Failpoint("coordinator.after_ledger_append");
  const LoggedEntry* logged = trail_.FindEntry(site, entry.id);
  if (logged == nullptr) return absl::InternalError("a logged ledger entry is not in the trail");
  return ReceiptFor(*logged, record.time_unix_ms);
}

bool AuditLog::HasRelease(absl::string_view site, absl::string_view job, int64_t round) const {
  absl::MutexLock lock(&mu_);
  return trail_.HasRelease(site, job, round);
}

absl::StatusOr<std::optional<AuditTrail::Budget>> AuditLog::BudgetOf(absl::string_view site,
                                                                     absl::string_view job) const {
  absl::MutexLock lock(&mu_);
  return trail_.BudgetOf(site, job);
}

std::vector<int64_t> AuditLog::CommittedRounds(absl::string_view job) const {
  absl::MutexLock lock(&mu_);
  const auto it = committed_.find(job);
  return it == committed_.end() ? std::vector<int64_t>() : it->second;
}

bool AuditLog::HasJobSubmitted(absl::string_view job) const {
  absl::MutexLock lock(&mu_);
  return submitted_jobs_.contains(job);
}

bool AuditLog::HasJobFinished(absl::string_view job) const {
  absl::MutexLock lock(&mu_);
  return finished_jobs_.contains(job);
}

absl::StatusOr<std::string> AuditLog::Export(absl::string_view actor) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(AppendLocked("audit_exported", json{{"by", std::string(actor)}}).status());
  RETURN_IF_ERROR(CheckpointLocked());
  return ReadFile(path_);
}

}  // namespace fedattn::audit
