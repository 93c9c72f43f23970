// The coordinator's durable record of sites: who registered, with which certificate, when first
// and last heard from. SQLite (WAL) under the state directory; survives kill -9.
//
// Thread-safe: every method takes an internal lock.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fedattn/storage/database.h"

namespace fedattn::coordinator {

struct SiteRecord {
  std::string name;
  std::string fingerprint;  // SHA-256 of the certificate last used (hex)
  absl::Time first_seen;
  absl::Time last_seen;
  std::string agent_version;
  uint32_t world_size = 1;
  std::string state;  // as last reported by the agent ("idle", "training", …)
  std::string certificate_pem;  // the certificate last used
};

struct Registration {
  std::string name;
  std::string fingerprint;
  std::string agent_version;
  uint32_t world_size = 1;
  std::string certificate_pem;
};

class SiteRegistry {
 public:
  // Opens (and migrates) the coordinator database in `state_dir`.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SiteRegistry>> Open(const std::filesystem::path& state_dir);

  // Records a registration. Returns true when the site is new. A known site presenting another
  // certificate (re-provisioned) is accepted and its fingerprint updated; the caller logs it.
  [[nodiscard]] absl::StatusOr<bool> Register(const Registration& registration, absl::Time now);

  // Marks a heartbeat. FAILED_PRECONDITION if the site never registered.
  [[nodiscard]] absl::Status Heartbeat(const std::string& name, const std::string& state, absl::Time now);

  [[nodiscard]] absl::StatusOr<SiteRecord> Get(const std::string& name);
  [[nodiscard]] absl::StatusOr<std::vector<SiteRecord>> List();

 private:
  explicit SiteRegistry(std::unique_ptr<storage::Database> db) : db_(std::move(db)) {}

  absl::Mutex mu_;
  std::unique_ptr<storage::Database> db_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fedattn::coordinator
