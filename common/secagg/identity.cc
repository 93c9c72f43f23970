#include "fedattn/secagg/identity.h"

#include "absl/strings/str_cat.h"

namespace fedattn::secagg {

absl::Status PeerDirectory::Add(SiteId site, EVP_PKEY* public_key) {
  if (public_key == nullptr || EVP_PKEY_is_a(public_key, "ED25519") != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("secagg: identity key of site ", site, " is not Ed25519"));
  }
  if (keys_.count(site) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("secagg: site ", site, " added twice"));
  }
  if (EVP_PKEY_up_ref(public_key) != 1) return absl::InternalError("EVP_PKEY_up_ref failed");
  keys_.emplace(site, crypto::PKeyPtr(public_key));
  return absl::OkStatus();
}

EVP_PKEY* PeerDirectory::Find(SiteId site) const {
  auto it = keys_.find(site);
  return it == keys_.end() ? nullptr : it->second.get();
}

}  // namespace fedattn::secagg
