// A privacy ledger entry: one privacy-relevant decision of a site (a release of an update, or a
// refusal), with the mechanism's parameters so that anyone can recompute its epsilon. The same
// entry, in the same canonical JSON bytes, is the site's own record (signed with its identity
// key), the coordinator's audit log record and what an auditor checks.
// Format: docs/formats/ledger.md.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace fedattn::audit {

inline constexpr double kUnbounded = std::numeric_limits<double>::infinity();
inline constexpr char kLedgerFormat[] = "fedattn.ledger.v1";

// Accountant identification written into every entry.
inline constexpr char kLedgerAccountant[] = "rdp";
inline constexpr char kLedgerAccountantVersion[] = "fedattn-rdp-1 (sgm: mironov2019; conversion: balle2020_thm21)";
// dp::DefaultRdpOrders(): 1.1..10.9 step 0.1, 11..63, 128, 256, 512, 1024.
inline constexpr char kLedgerOrderGrid[] = "dp_accounting_default_v1";

// What was released, in the accountant's terms.
struct LedgerMechanism {
  // "poisson_gaussian": DP-SGD with Poisson sampling (dp/rdp.h); "none": no sample-level DP.
  std::string name = "poisson_gaussian";
  double sampling_rate = 0;     // q in (0, 1]
  double noise_multiplier = 0;  // sigma > 0
  int64_t steps = 0;            // >= 1
  double max_grad_norm = 0;     // C > 0 (recorded; the accountant needs only sigma)
  // Client-level DP on the update (DP-FedAvg), when the job uses it; recorded, not composed into
  // the sample-level epsilon (its unit is the site, not the record). 0 = not used.
  double client_clip_norm = 0;         // S
  double client_noise_multiplier = 0;  // z
  int64_t client_contributors = 0;     // n: each site adds N(0, (zS)^2 / n)

  static LedgerMechanism None() { return LedgerMechanism{.name = "none"}; }
  bool unbounded() const { return name == "none"; }
};

enum class LedgerDecision { kReleased, kRefused };

struct LedgerEntry {
  int64_t id = 0;                       // the site's sequence number: 1, 2, 3, ... in its ledger
  std::string site_name;                // the site's certificate name
  std::string site_certificate_sha256;  // hex SHA-256 of the site's certificate (DER)
  std::string job_id;
  int64_t round = 0;
  std::string dataset_id;               // hash of the site's data manifest
  std::string privacy_unit = "record";  // what a neighbouring dataset differs by
  LedgerMechanism mechanism;
  double delta = 0;  // the job's delta: epsilon_release is at this delta
  std::string accountant = kLedgerAccountant;
  std::string accountant_version = kLedgerAccountantVersion;
  std::string order_grid = kLedgerOrderGrid;
  double epsilon_release = 0;     // this release alone, at `delta`
  double epsilon_cumulative = 0;  // every release of the site, this one included, at cap_delta
                                  // (for a refusal: what it would have been)
  double epsilon_cap = kUnbounded;  // the site's cap when the decision was taken, at cap_delta
  double cap_delta = 1e-5;
  LedgerDecision decision = LedgerDecision::kReleased;
  std::string reason;           // why it was refused; empty for a release
  std::string update_sha256;    // hex digest of the released update (or empty)
  std::string model_sha256;     // hex digest of the global model it was trained from (or empty)
  int64_t created_unix_ms = 0;
};

// OK for a valid mechanism; INVALID_ARGUMENT naming the bad parameter otherwise.
[[nodiscard]] absl::Status ValidateMechanism(const LedgerMechanism& mechanism);

// The entry as a JSON object (docs/formats/ledger.md); +infinity is written as null.
nlohmann::json LedgerEntryToJson(const LedgerEntry& entry);
// Its canonical bytes (what the site signs). Errors: INVALID_ARGUMENT for a non-finite value.
[[nodiscard]] absl::StatusOr<std::string> CanonicalLedgerEntry(const LedgerEntry& entry);
// Reads an entry back. Errors: INVALID_ARGUMENT naming the missing or mistyped field.
[[nodiscard]] absl::StatusOr<LedgerEntry> LedgerEntryFromJson(const nlohmann::json& json);

// Domain-separated Ed25519 signatures over canonical JSON: the signed message is
// domain || 0x00 || canonical, so a signature made for one kind of record cannot be replayed as
// another. Signatures travel as lowercase hex.
inline constexpr char kLedgerEntryDomain[] = "fedattn.ledger-entry.v1";
inline constexpr char kReceiptDomain[] = "fedattn.receipt.v1";
inline constexpr char kCheckpointDomain[] = "fedattn.audit-checkpoint.v1";
[[nodiscard]] absl::StatusOr<std::string> SignCanonical(EVP_PKEY* private_key, absl::string_view domain,
                                                        absl::string_view canonical);
// OK if `signature_hex` verifies; UNAUTHENTICATED (with the reason) otherwise.
[[nodiscard]] absl::Status VerifyCanonical(EVP_PKEY* public_key, absl::string_view domain,
                                           absl::string_view canonical, absl::string_view signature_hex);

// Hex SHA-256 of `bytes`.
std::string Sha256Hex(absl::string_view bytes);

}  // namespace fedattn::audit
