// Writes the seed corpus of audit_fuzz (fuzz/corpus/audit_fuzz/): small genuine exports made by
// the coordinator's AuditLog with test identities (tests/common/audit/audit_test_identities.h).
// Not part of the build; compile it against fedattn_common when the log format changes, e.g.
//   c++ -std=c++20 -Icommon/include -Itests/common/audit -Ibuild/generated fuzz/seeds/make_audit_seed.cc \
//     build/common/libfedattn_common.a $(libraries of fedattn_common) -o /tmp/make_audit_seed
//   /tmp/make_audit_seed fuzz/corpus/audit_fuzz
#include <filesystem>
#include <fstream>
#include <iostream>

#include "audit_test_identities.h"
#include "fedattn/audit/audit_log.h"

using namespace fedattn::audit;
using namespace fedattn::audit::testing;

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::filesystem::path out = argv[1];
  std::filesystem::create_directories(out);
  const std::filesystem::path scratch = std::filesystem::temp_directory_path() / "make-audit-seed";
  std::filesystem::remove_all(scratch);
  std::filesystem::create_directories(scratch);
  Party ca = MakeParty("ca", fedattn::crypto::PartyRole::kCa, nullptr);
  Party coordinator = MakeParty("coord", fedattn::crypto::PartyRole::kCoordinator, &ca);
  for (int variant = 0; variant < 2; ++variant) {
    auto log = AuditLog::Open(scratch / ("audit-" + std::to_string(variant) + ".jsonl"),
                              AuditLog::Identity{"coord", coordinator.pem, CopyKey(coordinator.key.get()), ca.pem});
    if (!log.ok()) {
      std::cerr << log.status() << "\n";
      return 1;
    }
    TestSite a("site-a", &ca), b("site-b", &ca);
    (void)(*log)->Append("job_submitted", {{"job", "job-1"}, {"by", "admin"}});
    for (int round = 1; round <= 1 + variant; ++round) {
      for (TestSite* site : {&a, &b}) {
        const auto e = site->Next("job-1", round, 0.2, 1.5, 10);
        (void)(*log)->RecordLedgerEntry(site->name(), site->party().pem, e.canonical, e.signature);
      }
      (void)(*log)->Append("round_committed", {{"job", "job-1"}, {"round", round}, {"model_sha256", "cd"}});
      (void)(*log)->Checkpoint();
    }
    if (variant == 1) {
      const auto refused = a.Next("job-2", 1, 0.5, 0.8, 100, /*released=*/false);
      (void)(*log)->RecordLedgerEntry("site-a", a.party().pem, refused.canonical, refused.signature);
    }
    auto exported = (*log)->Export("admin");
    if (!exported.ok()) {
      std::cerr << exported.status() << "\n";
      return 1;
    }
    std::ofstream(out / (variant == 0 ? "one_round" : "two_rounds_refusal")) << *exported;
  }
  std::filesystem::remove_all(scratch);
  return 0;
}
