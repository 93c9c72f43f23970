// Test identities for the audit tests: a CA, a coordinator and sites with Ed25519 keys.
#pragma once

#include <string>

#include "absl/time/clock.h"
#include "fedattn/crypto/certificate.h"
#include "fedattn/crypto/keys.h"

namespace fedattn::audit::testing {

struct Party {
  crypto::PKeyPtr key;
  crypto::X509Ptr cert;
  std::string pem;
  std::string fingerprint;
};

inline crypto::PKeyPtr CopyKey(EVP_PKEY* key) {
  EVP_PKEY_up_ref(key);
  return crypto::PKeyPtr(key);
}

inline Party MakeParty(const std::string& name, crypto::PartyRole role, const Party* ca) {
  Party party;
  party.key = *crypto::GenerateEd25519Key();
  crypto::CertificateRequest request{.name = name, .role = role, .federation = "test"};
  request.not_before = absl::Now() - absl::Hours(24 * 365);
  request.not_after = absl::Now() + absl::Hours(24 * 365);
  party.cert = ca == nullptr ? *crypto::IssueCertificate(request, party.key.get(), nullptr, party.key.get())
                             : *crypto::IssueCertificate(request, party.key.get(), ca->cert.get(), ca->key.get());
  party.pem = *crypto::CertificateToPem(party.cert.get());
  party.fingerprint = crypto::InspectCertificate(party.cert.get())->fingerprint;
  return party;
}

}  // namespace fedattn::audit::testing

#include "fedattn/audit/canonical_json.h"
#include "fedattn/audit/ledger_entry.h"
#include "fedattn/audit/privacy_history.h"

namespace fedattn::audit::testing {

// A site that keeps its own history and signs entries the way the agent's ledger does.
class TestSite {
 public:
  TestSite(std::string name, const Party* ca) : name_(std::move(name)), party_(MakeParty(name_, crypto::PartyRole::kSite, ca)) {}

  struct Signed {
    LedgerEntry entry;
    std::string canonical;
    std::string signature;
  };

  // The next entry: DP-SGD with (q, sigma, steps), released or refused, epsilons computed.
  Signed Next(const std::string& job, int64_t round, double q, double sigma, int64_t steps, bool released = true,
              double cap = 50) {
    LedgerEntry e;
    e.id = ++seq_;
    e.site_name = name_;
    e.site_certificate_sha256 = party_.fingerprint;
    e.job_id = job;
    e.round = round;
    e.dataset_id = "sha256:data";
    e.mechanism = LedgerMechanism{.name = "poisson_gaussian", .sampling_rate = q, .noise_multiplier = sigma,
                                  .steps = steps, .max_grad_norm = 1.0};
    e.delta = 1e-5;
    e.epsilon_release = *history_.Alone(e.delta, e.mechanism);
    e.epsilon_cumulative = *history_.Epsilon(1e-5, &e.mechanism);
    e.epsilon_cap = cap;
    e.cap_delta = 1e-5;
    e.decision = released ? LedgerDecision::kReleased : LedgerDecision::kRefused;
    if (!released) e.reason = "privacy cap";
    e.update_sha256 = released ? std::string(64, 'a') : "";
    e.model_sha256 = std::string(64, 'b');
    e.created_unix_ms = 1'700'000'000'000 + e.id;
    if (released) (void)history_.Add(e.mechanism);
    Signed out{e, *CanonicalLedgerEntry(e), ""};
    out.signature = *SignCanonical(party_.key.get(), kLedgerEntryDomain, out.canonical);
    return out;
  }

  const std::string& name() const { return name_; }
  const Party& party() const { return party_; }

 private:
  std::string name_;
  Party party_;
  PrivacyHistory history_;
  int64_t seq_ = 0;
};

}  // namespace fedattn::audit::testing
