// The site's own privacy ledger: one row per privacy-relevant decision (a release of an update,
// or a refusal), durable in SQLite before anything leaves the site. Row format: docs/jobs.md,
// "The site ledger".
//
// Every row carries the mechanism's parameters (q, sigma, C, steps, delta), not only epsilon, so
// anyone can recompute epsilon: composing the released rows with dp::RdpAccountant (default
// grid) gives exactly the recorded cumulative epsilon. The site's cumulative epsilon composes EVERY release of the site
// (all jobs, all datasets: a new file version may hold the same patients) with the RDP
// accountant (dp/accountant.h) over the history of (q, sigma, steps) rows, at the cap's delta.
// A release without sample-level DP (mechanism "none") has unbounded epsilon: +infinity here,
// NULL in the database; after one, the cumulative epsilon is +infinity for good.
//
// Thread-safe: one mutex serialises every call.
#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "fedattn/common/clock.h"

namespace fedattn::storage {
class Database;
}

namespace fedattn::agent {

inline constexpr double kUnbounded = std::numeric_limits<double>::infinity();

// What was released, in the accountant's terms.
struct LedgerMechanism {
  // "poisson_gaussian": DP-SGD with Poisson sampling (rdp.h); "none": no sample-level DP.
  std::string name = "poisson_gaussian";
  double sampling_rate = 0;     // q in (0, 1]
  double noise_multiplier = 0;  // sigma > 0
  int64_t steps = 0;            // >= 1
  double max_grad_norm = 0;     // C > 0 (recorded; the accountant needs only sigma)
  // Client-level DP on the update (DP-FedAvg), when the job uses it; recorded, not composed into
  // the sample-level epsilon (its unit is the site, not the record). 0 = not used.
  double client_clip_norm = 0;         // S
  double client_noise_multiplier = 0;  // z

  static LedgerMechanism None() { return LedgerMechanism{.name = "none"}; }
  bool unbounded() const { return name == "none"; }
};

enum class LedgerDecision { kReleased, kRefused };

struct LedgerEntry {
  int64_t id = 0;  // assigned by the ledger, increasing
  std::string job_id;
  int64_t round = 0;
  std::string dataset_id;
  LedgerMechanism mechanism;
  double delta = 0;  // the job's delta: epsilon_release is at this delta
  // Filled in by the ledger (what is passed in is ignored):
  std::string accountant;          // "rdp"
  std::string accountant_version;  // kLedgerAccountantVersion
  std::string order_grid;          // kLedgerOrderGrid
  double epsilon_release = 0;      // this release alone, at `delta`
  double epsilon_cumulative = 0;   // every release of the site, this one included, at cap_delta
                                   // (for a refusal: what it would have been)
  // The site's cap when the decision was taken (policy.epsilon_max at policy.delta).
  double epsilon_cap = kUnbounded;
  double cap_delta = 1e-5;
  LedgerDecision decision = LedgerDecision::kReleased;  // set by RecordRelease / RecordRefusal
  std::string reason;         // why it was refused; empty for a release
  std::string update_sha256;  // hex digest of the released update (or empty)
  std::string model_sha256;   // hex digest of the global model it was trained from (or empty)
  int64_t created_unix_ms = 0;  // set by the ledger from its clock
};

// Accountant identification written into every row.
inline constexpr char kLedgerAccountant[] = "rdp";
inline constexpr char kLedgerAccountantVersion[] = "fedattn-rdp-1 (sgm: mironov2019; conversion: balle2020_thm21)";
// dp::DefaultRdpOrders(): 1.1..10.9 step 0.1, 11..63, 128, 256, 512, 1024.
inline constexpr char kLedgerOrderGrid[] = "dp_accounting_default_v1";

struct SpendProjection {
  double epsilon_release = 0;           // the mechanism alone, at the release delta
  double epsilon_cumulative_after = 0;  // the site's history plus this release, at the cap delta
};

struct LedgerSummary {
  struct Job {
    std::string job_id;
    int64_t releases = 0, refusals = 0;
    double epsilon = 0;  // this job's releases composed, at the summary's delta
  };
  std::vector<Job> jobs;  // in order of first appearance
  double epsilon_total = 0;  // every release composed, at the summary's delta
  double delta = 0;
};

class SiteLedger {
 public:
  // Opens (creating, migrating) the ledger at `path` (WAL, synchronous=FULL, mode 0600) and
  // composes the released history. `clock` (not owned, must outlive the ledger) stamps rows.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SiteLedger>> Open(const std::filesystem::path& path,
                                                                        const Clock* clock = RealClock::Get());
  ~SiteLedger();

  // What releasing `mechanism` would cost: alone at `release_delta`, and on top of every
  // release so far at `cap_delta`. Unbounded for mechanism "none". Records nothing.
  // Errors: INVALID_ARGUMENT for invalid parameters or deltas outside (0, 1).
  [[nodiscard]] absl::StatusOr<SpendProjection> ProjectSpend(const LedgerMechanism& mechanism, double release_delta,
                                                             double cap_delta) const;

  // Records a release, durably (fsync'd commit) before returning, and returns the stored row with
  // the epsilon fields computed. Nothing is recorded when it fails: INVALID_ARGUMENT for bad
  // fields; ALREADY_EXISTS if (job_id, round) was already released (a re-sent round is never
  // charged twice: send the recorded update again); RESOURCE_EXHAUSTED when the cumulative
  // epsilon would exceed entry.epsilon_cap (record a refusal instead).
  [[nodiscard]] absl::StatusOr<LedgerEntry> RecordRelease(LedgerEntry entry);
  // Records a refusal (with its reason, required) durably; spends nothing.
  [[nodiscard]] absl::StatusOr<LedgerEntry> RecordRefusal(LedgerEntry entry);

  // The release of (job_id, round), if any.
  [[nodiscard]] absl::StatusOr<std::optional<LedgerEntry>> FindRelease(absl::string_view job_id, int64_t round) const;
  // Every row, oldest first.
  [[nodiscard]] absl::StatusOr<std::vector<LedgerEntry>> Entries() const;
  // Epsilon per job and in total, at `delta`.
  [[nodiscard]] absl::StatusOr<LedgerSummary> Summary(double delta) const;
  // The site's cumulative epsilon so far at `delta` (kUnbounded after a release without DP).
  [[nodiscard]] absl::StatusOr<double> SpentEpsilon(double delta) const;

  // The composed history of releases (the accountant's arithmetic, with the per-step RDP of each
  // distinct (q, sigma) computed once).
  class History;

 private:
  SiteLedger(std::unique_ptr<storage::Database> db, const Clock* clock, std::unique_ptr<History> history);
  absl::StatusOr<LedgerEntry> Record(LedgerEntry entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::unique_ptr<storage::Database> db_ ABSL_GUARDED_BY(mu_);
  const Clock* clock_;
  std::unique_ptr<History> history_ ABSL_GUARDED_BY(mu_);  // every released row
};

}  // namespace fedattn::agent
