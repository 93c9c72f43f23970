// The identity (Ed25519) public keys of the sites, as provisioned in their certificates. Both the
// server and the clients use it to check the signatures on advertised SecAgg keys, so that the
// coordinator cannot substitute its own keys for a site's.
#pragma once

#include <openssl/evp.h>

#include <map>

#include "absl/status/status.h"
#include "fedattn/crypto/keys.h"
#include "fedattn/secagg/config.h"

namespace fedattn::secagg {

// Immutable once built; share it as std::shared_ptr<const PeerDirectory>. Find() is thread-safe.
class PeerDirectory {
 public:
  // Takes a reference on `public_key` (an Ed25519 key, e.g. X509_get0_pubkey of the site's
  // certificate). INVALID_ARGUMENT if it is not Ed25519 or the site is already present.
  [[nodiscard]] absl::Status Add(SiteId site, EVP_PKEY* public_key);
  // The site's key, or nullptr if unknown.
  EVP_PKEY* Find(SiteId site) const;

 private:
  std::map<SiteId, crypto::PKeyPtr> keys_;
};

}  // namespace fedattn::secagg
