// Owning handles for OpenSSL objects, and the identity keys of FedAttn parties (Ed25519).
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"
#include "absl/status/statusor.h"

namespace fedattn::crypto {

struct PKeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct X509Deleter {
  void operator()(X509* cert) const { X509_free(cert); }
};
using PKeyPtr = std::unique_ptr<EVP_PKEY, PKeyDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;

// A string holding secret bytes (a PEM private key): wiped with OPENSSL_cleanse on destruction.
class SecretString {
 public:
  SecretString() = default;
  explicit SecretString(std::string value) : value_(std::move(value)) {}
  SecretString(const SecretString&) = delete;
  SecretString& operator=(const SecretString&) = delete;
  SecretString(SecretString&& other) noexcept : value_(std::move(other.value_)) { other.Wipe(); }
  SecretString& operator=(SecretString&& other) noexcept;
  ~SecretString() { Wipe(); }

  const std::string& value() const { return value_; }

 private:
  void Wipe();
  std::string value_;
};

// A fresh Ed25519 key pair from OpenSSL's CSPRNG.
[[nodiscard]] absl::StatusOr<PKeyPtr> GenerateEd25519Key();

// PKCS#8 PEM of the private key (unencrypted: the file holding it is 0600).
[[nodiscard]] absl::StatusOr<SecretString> PrivateKeyToPem(EVP_PKEY* key);
// Parses a PEM private key; INVALID_ARGUMENT with OpenSSL's reason if it is not one.
[[nodiscard]] absl::StatusOr<PKeyPtr> PrivateKeyFromPem(absl::string_view pem);

}  // namespace fedattn::crypto
