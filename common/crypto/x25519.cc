#include "fedattn/crypto/x25519.h"

#include <openssl/crypto.h>

#include "fedattn/common/status_macros.h"
#include "fedattn/crypto/openssl_error.h"

namespace fedattn::crypto {
namespace {

struct PKeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* ctx) const { EVP_PKEY_CTX_free(ctx); }
};

}  // namespace

absl::StatusOr<X25519PrivateKey> X25519PrivateKey::Generate(RandomSource& random) {
  Key32 raw;
  RETURN_IF_ERROR(random.Fill(raw.mutable_span()));
  return FromRaw(raw.span());
}

absl::StatusOr<X25519PrivateKey> X25519PrivateKey::FromRaw(std::span<const uint8_t, 32> raw) {
  PKeyPtr key(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, raw.data(), raw.size()));
  if (!key) return OpenSslError("cannot load an X25519 private key");
  X25519PublicKey public_key;
  size_t len = public_key.size();
  if (EVP_PKEY_get_raw_public_key(key.get(), public_key.data(), &len) != 1 ||
      len != public_key.size()) {
    return OpenSslError("cannot derive the X25519 public key");
  }
  return X25519PrivateKey(std::move(key), public_key);
}

absl::StatusOr<Key32> X25519PrivateKey::RawPrivate() const {
  Key32 raw;
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_private_key(key_.get(), raw.data(), &len) != 1 || len != raw.size()) {
    return OpenSslError("cannot export the X25519 private key");
  }
  return raw;
}

absl::StatusOr<Key32> X25519PrivateKey::Agree(const X25519PublicKey& peer) const {
  PKeyPtr peer_key(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer.data(), peer.size()));
  if (!peer_key) {
    return OpenSslError("not an X25519 public key", absl::StatusCode::kInvalidArgument);
  }
  std::unique_ptr<EVP_PKEY_CTX, PKeyCtxDeleter> ctx(
      EVP_PKEY_CTX_new_from_pkey(nullptr, key_.get(), nullptr));
  if (!ctx) return OpenSslError("cannot allocate an X25519 context");
  if (EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer_ex(ctx.get(), peer_key.get(), 0) != 1) {
    return OpenSslError("cannot set up X25519 agreement");
  }
  Key32 shared;
  size_t len = shared.size();
  // OpenSSL fails the derivation when the output is all zero (RFC 7748 §6.1 check).
  if (EVP_PKEY_derive(ctx.get(), shared.data(), &len) != 1 || len != shared.size()) {
    return OpenSslError("X25519 agreement failed (low-order public key?)",
                        absl::StatusCode::kInvalidArgument);
  }
  return shared;
}

}  // namespace fedattn::crypto
