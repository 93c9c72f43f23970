#include "fedattn/coordinator/site_registry.h"

#include "absl/strings/str_cat.h"
#include "fedattn/common/files.h"
#include "fedattn/common/status_macros.h"

namespace fedattn::coordinator {
namespace {

// The coordinator schema. Append new versions; never edit a released one.
constexpr storage::Migration kSiteRegistryMigrations[] = {
    {1, "sites",
     "CREATE TABLE sites ("
     "  name TEXT PRIMARY KEY,"
     "  fingerprint TEXT NOT NULL,"
     "  first_seen_ms INTEGER NOT NULL,"
     "  last_seen_ms INTEGER NOT NULL,"
     "  agent_version TEXT NOT NULL DEFAULT '',"
     "  world_size INTEGER NOT NULL DEFAULT 1,"
     "  state TEXT NOT NULL DEFAULT ''"
     ");"},
    // Sites' certificates: SecAgg peers check each other's signed keys against them.
    {2, "site certificates", "ALTER TABLE sites ADD COLUMN certificate_pem TEXT NOT NULL DEFAULT '';"},
};

SiteRecord ReadSite(const storage::Statement& row) {
  SiteRecord site;
  site.name = row.ColumnText(0);
  site.fingerprint = row.ColumnText(1);
  site.first_seen = absl::FromUnixMillis(row.ColumnInt(2));
  site.last_seen = absl::FromUnixMillis(row.ColumnInt(3));
  site.agent_version = row.ColumnText(4);
  site.world_size = static_cast<uint32_t>(row.ColumnInt(5));
  site.state = row.ColumnText(6);
  site.certificate_pem = row.ColumnText(7);
  return site;
}

constexpr char kSelectSites[] =
    "SELECT name, fingerprint, first_seen_ms, last_seen_ms, agent_version, world_size, state, certificate_pem"
    " FROM sites";

}  // namespace

absl::StatusOr<std::unique_ptr<SiteRegistry>> SiteRegistry::Open(const std::filesystem::path& state_dir) {
  RETURN_IF_ERROR(EnsureDirectory(state_dir, 0700));
  ASSIGN_OR_RETURN(std::unique_ptr<storage::Database> db, storage::Database::Open(state_dir / "coordinator.db"));
  RETURN_IF_ERROR(db->Migrate(kSiteRegistryMigrations));
  return std::unique_ptr<SiteRegistry>(new SiteRegistry(std::move(db)));
}

absl::StatusOr<bool> SiteRegistry::Register(const Registration& registration, absl::Time now) {
  absl::MutexLock lock(&mu_);
  bool is_new = false;
  RETURN_IF_ERROR(db_->InTransaction([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
    ASSIGN_OR_RETURN(storage::Statement find, db_->Prepare("SELECT 1 FROM sites WHERE name = ?1"));
    find.Bind(1, registration.name);
    ASSIGN_OR_RETURN(bool exists, find.Step());
    is_new = !exists;
    ASSIGN_OR_RETURN(
        storage::Statement upsert,
        db_->Prepare("INSERT INTO sites (name, fingerprint, first_seen_ms, last_seen_ms, agent_version,"
                     " world_size, state, certificate_pem) VALUES (?1, ?2, ?3, ?3, ?4, ?5, 'registered', ?6)"
                     " ON CONFLICT(name) DO UPDATE SET fingerprint = ?2, last_seen_ms = ?3,"
                     " agent_version = ?4, world_size = ?5, state = 'registered',"
                     " certificate_pem = ?6"));
    upsert.Bind(1, registration.name)
        .Bind(2, registration.fingerprint)
        .Bind(3, absl::ToUnixMillis(now))
        .Bind(4, registration.agent_version)
        .Bind(5, static_cast<int64_t>(registration.world_size))
        .Bind(6, registration.certificate_pem);
    return upsert.Run();
  }));
  return is_new;
}

absl::Status SiteRegistry::Heartbeat(const std::string& name, const std::string& state, absl::Time now) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(storage::Statement update,
                   db_->Prepare("UPDATE sites SET last_seen_ms = ?2, state = ?3 WHERE name = ?1"));
  update.Bind(1, name).Bind(2, absl::ToUnixMillis(now)).Bind(3, state);
  RETURN_IF_ERROR(update.Run());
  ASSIGN_OR_RETURN(storage::Statement changes, db_->Prepare("SELECT changes()"));
  ASSIGN_OR_RETURN(bool row, changes.Step());
  if (!row || changes.ColumnInt(0) == 0) {
    return absl::FailedPreconditionError(absl::StrCat("site '", name, "' has not registered"));
  }
  return absl::OkStatus();
}

absl::StatusOr<SiteRecord> SiteRegistry::Get(const std::string& name) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(storage::Statement select, db_->Prepare(absl::StrCat(kSelectSites, " WHERE name = ?1")));
  select.Bind(1, name);
  ASSIGN_OR_RETURN(bool row, select.Step());
  if (!row) return absl::NotFoundError(absl::StrCat("no site named '", name, "'"));
  return ReadSite(select);
}

absl::StatusOr<std::vector<SiteRecord>> SiteRegistry::List() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(storage::Statement select, db_->Prepare(absl::StrCat(kSelectSites, " ORDER BY name")));
  std::vector<SiteRecord> sites;
  while (true) {
    ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) break;
    sites.push_back(ReadSite(select));
  }
  return sites;
}

}  // namespace fedattn::coordinator
