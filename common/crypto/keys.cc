#include "fedattn/crypto/keys.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "fedattn/crypto/openssl_error.h"
#include "openssl_util.h"

namespace fedattn::crypto {
SecretString& SecretString::operator=(SecretString&& other) noexcept {
  if (this != &other) {
    Wipe();
    value_ = std::move(other.value_);
    other.Wipe();
  }
  return *this;
}

void SecretString::Wipe() {
  if (!value_.empty()) OPENSSL_cleanse(value_.data(), value_.size());
  value_.clear();
}

absl::StatusOr<PKeyPtr> GenerateEd25519Key() {
  PKeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) return OpenSslError("cannot generate an Ed25519 key");
  return key;
}

absl::StatusOr<SecretString> PrivateKeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio) return OpenSslError("cannot allocate a secure memory BIO");
  if (PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpenSslError("cannot encode the private key as PEM");
  }
  return SecretString(BioContents(bio.get()));
}

absl::StatusOr<PKeyPtr> PrivateKeyFromPem(absl::string_view pem) {
  BioPtr bio = ReadOnlyBio(pem);
  if (!bio) return OpenSslError("cannot allocate a BIO");
  PKeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return OpenSslError("not a PEM private key", absl::StatusCode::kInvalidArgument);
  return key;
}

}  // namespace fedattn::crypto
