#include "fedattn/coordinator/site_registry.h"

#include "gtest/gtest.h"
#include "util/temp_dir.h"

namespace fedattn::coordinator {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

TEST(SiteRegistryTest, RegistersHeartbeatsAndPersists) {
  testing::TempDir dir;
  {
    auto registry = SiteRegistry::Open(dir / "state");
    ASSERT_TRUE(registry.ok()) << registry.status();
    EXPECT_TRUE(*(*registry)->Register({"a", "fp1", "0.1.0", 2}, kT0));
    EXPECT_FALSE(*(*registry)->Register({"a", "fp1", "0.1.0", 2}, kT0 + absl::Seconds(1)));
    ASSERT_TRUE((*registry)->Heartbeat("a", "idle", kT0 + absl::Seconds(5)).ok());
  }
  auto registry = SiteRegistry::Open(dir / "state");
  auto site = (*registry)->Get("a");
  ASSERT_TRUE(site.ok());
  EXPECT_EQ(site->first_seen, kT0);
  EXPECT_EQ(site->last_seen, kT0 + absl::Seconds(5));
  EXPECT_EQ(site->world_size, 2u);
  EXPECT_EQ(site->state, "idle");
}

TEST(SiteRegistryTest, NewCertificateReplacesTheFingerprint) {
  testing::TempDir dir;
  auto registry = SiteRegistry::Open(dir / "state");
  ASSERT_TRUE((*registry)->Register({"a", "old", "", 1}, kT0).ok());
  ASSERT_TRUE((*registry)->Register({"a", "new", "", 1}, kT0 + absl::Seconds(1)).ok());
  EXPECT_EQ((*registry)->Get("a")->fingerprint, "new");
  EXPECT_EQ((*registry)->Get("a")->first_seen, kT0);
}

TEST(SiteRegistryTest, HeartbeatFromUnknownSiteIsRefused) {
  testing::TempDir dir;
  auto registry = SiteRegistry::Open(dir / "state");
  const absl::Status status = (*registry)->Heartbeat("ghost", "idle", kT0);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(), "site 'ghost' has not registered");
  EXPECT_EQ((*registry)->Get("ghost").status().code(), absl::StatusCode::kNotFound);
}

TEST(SiteRegistryTest, ListsInNameOrder) {
  testing::TempDir dir;
  auto registry = SiteRegistry::Open(dir / "state");
  for (const char* name : {"c", "a", "b"}) ASSERT_TRUE((*registry)->Register({name, "f", "", 1}, kT0).ok());
  auto sites = (*registry)->List();
  ASSERT_EQ(sites->size(), 3u);
  EXPECT_EQ((*sites)[0].name, "a");
  EXPECT_EQ((*sites)[2].name, "c");
}

}  // namespace
}  // namespace fedattn::coordinator
