#include "fedattn/crypto/signature.h"

#include <memory>

#include "fedattn/crypto/openssl_error.h"

namespace fedattn::crypto {
namespace {

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

bool IsEd25519(EVP_PKEY* key) { return key != nullptr && EVP_PKEY_is_a(key, "ED25519") == 1; }

}  // namespace

absl::StatusOr<Ed25519Signature> SignEd25519(EVP_PKEY* private_key,
                                             std::span<const uint8_t> message) {
  if (!IsEd25519(private_key)) return absl::InvalidArgumentError("not an Ed25519 key");
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return OpenSslError("cannot allocate a digest context");
  // Pure Ed25519 (RFC 8032 §5.1.6) takes no pre-hash: the md is null.
  if (EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, private_key) != 1) {
    return OpenSslError("cannot initialise Ed25519 signing");
  }
  Ed25519Signature signature;
  size_t len = signature.size();
  if (EVP_DigestSign(ctx.get(), signature.data(), &len, message.data(), message.size()) != 1 ||
      len != signature.size()) {
    return OpenSslError("Ed25519 signing failed");
  }
  return signature;
}

absl::Status VerifyEd25519(EVP_PKEY* public_key, std::span<const uint8_t> message,
                           std::span<const uint8_t> signature) {
  if (!IsEd25519(public_key)) return absl::InvalidArgumentError("not an Ed25519 key");
  if (signature.size() != 64) {
    return absl::UnauthenticatedError("Ed25519 signature must be 64 bytes");
  }
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return OpenSslError("cannot allocate a digest context");
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, public_key) != 1) {
    return OpenSslError("cannot initialise Ed25519 verification");
  }
  if (EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), message.data(),
                       message.size()) != 1) {
    DrainOpenSslErrors();
    return absl::UnauthenticatedError("Ed25519 signature does not verify");
  }
  return absl::OkStatus();
}

absl::StatusOr<Ed25519PublicKeyBytes> Ed25519RawPublicKey(EVP_PKEY* key) {
  if (!IsEd25519(key)) return absl::InvalidArgumentError("not an Ed25519 key");
  Ed25519PublicKeyBytes raw;
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(key, raw.data(), &len) != 1 || len != raw.size()) {
    return OpenSslError("cannot export the Ed25519 public key");
  }
  return raw;
}

absl::StatusOr<PKeyPtr> Ed25519PublicKeyFromRaw(std::span<const uint8_t, 32> raw) {
  PKeyPtr key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw.data(), raw.size()));
  if (!key) return OpenSslError("not an Ed25519 public key", absl::StatusCode::kInvalidArgument);
  return key;
}

absl::StatusOr<PKeyPtr> Ed25519PrivateKeyFromRaw(std::span<const uint8_t, 32> raw) {
  PKeyPtr key(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, raw.data(), raw.size()));
  if (!key) return OpenSslError("not an Ed25519 private key", absl::StatusCode::kInvalidArgument);
  return key;
}

}  // namespace fedattn::crypto
