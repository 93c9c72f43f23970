#include "fedattn/crypto/hkdf.h"

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <memory>

#include "fedattn/crypto/openssl_error.h"

namespace fedattn::crypto {
namespace {

struct KdfCtxDeleter {
  void operator()(EVP_KDF_CTX* ctx) const { EVP_KDF_CTX_free(ctx); }
};

EVP_KDF* HkdfAlgorithm() {
  static EVP_KDF* const kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  return kdf;
}

}  // namespace

absl::Status HkdfSha256(std::span<const uint8_t> ikm, std::span<const uint8_t> salt,
                        std::span<const uint8_t> info, std::span<uint8_t> out) {
  if (out.empty() || out.size() > 255 * 32) {
    return absl::InvalidArgumentError("HKDF-SHA256 output must be 1..8160 bytes (RFC 5869 §2.3)");
  }
  EVP_KDF* kdf = HkdfAlgorithm();
  if (kdf == nullptr) return OpenSslError("HKDF is unavailable");
  std::unique_ptr<EVP_KDF_CTX, KdfCtxDeleter> ctx(EVP_KDF_CTX_new(kdf));
  if (!ctx) return OpenSslError("cannot allocate an HKDF context");
  char digest[] = "SHA256";
  // OSSL_PARAM wants non-const pointers; OpenSSL only reads these buffers.
  static const uint8_t kEmpty = 0;
  auto octets = [](const char* key, std::span<const uint8_t> s) {
    return OSSL_PARAM_construct_octet_string(
        key, const_cast<uint8_t*>(s.empty() ? &kEmpty : s.data()), s.size());
  };
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      octets(OSSL_KDF_PARAM_KEY, ikm),
      octets(OSSL_KDF_PARAM_SALT, salt),
      octets(OSSL_KDF_PARAM_INFO, info),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
    return OpenSslError("HKDF-SHA256 derivation failed");
  }
  return absl::OkStatus();
}

}  // namespace fedattn::crypto
