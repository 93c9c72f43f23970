#include "fedattn/crypto/aead.h"

#include <openssl/evp.h>

#include "fedattn/crypto/openssl_error.h"
#include "fedattn/crypto/prg.h"

namespace fedattn::crypto {
namespace {

const EVP_CIPHER* Aes256Gcm() {
  static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher;
}

}  // namespace

absl::StatusOr<std::vector<uint8_t>> Aes256GcmSeal(std::span<const uint8_t, kGcmKeySize> key,
                                                   std::span<const uint8_t, kGcmNonceSize> nonce,
                                                   std::span<const uint8_t> aad,
                                                   std::span<const uint8_t> plaintext) {
  if (Aes256Gcm() == nullptr) return OpenSslError("AES-256-GCM is unavailable");
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return OpenSslError("cannot allocate a cipher context");
  // The default GCM IV length is 12 bytes (NIST SP 800-38D §8.2.1), which is what we pass.
  if (EVP_EncryptInit_ex2(ctx.get(), Aes256Gcm(), key.data(), nonce.data(), nullptr) != 1) {
    return OpenSslError("cannot initialise AES-256-GCM");
  }
  int len = 0;
  if (!aad.empty() &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) {
    return OpenSslError("AES-256-GCM AAD failed");
  }
  std::vector<uint8_t> out(plaintext.size() + kGcmTagSize);
  int written = 0;
  if (!plaintext.empty() && EVP_EncryptUpdate(ctx.get(), out.data(), &written, plaintext.data(),
                                              static_cast<int>(plaintext.size())) != 1) {
    return OpenSslError("AES-256-GCM encryption failed");
  }
  if (EVP_EncryptFinal_ex(ctx.get(), out.data() + written, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kGcmTagSize,
                          out.data() + plaintext.size()) != 1) {
    return OpenSslError("AES-256-GCM finalisation failed");
  }
  return out;
}

absl::StatusOr<std::vector<uint8_t>> Aes256GcmOpen(std::span<const uint8_t, kGcmKeySize> key,
                                                   std::span<const uint8_t, kGcmNonceSize> nonce,
                                                   std::span<const uint8_t> aad,
                                                   std::span<const uint8_t> sealed) {
  if (sealed.size() < kGcmTagSize) {
    return absl::UnauthenticatedError("AES-256-GCM ciphertext shorter than its tag");
  }
  if (Aes256Gcm() == nullptr) return OpenSslError("AES-256-GCM is unavailable");
  const size_t ct_size = sealed.size() - kGcmTagSize;
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return OpenSslError("cannot allocate a cipher context");
  if (EVP_DecryptInit_ex2(ctx.get(), Aes256Gcm(), key.data(), nonce.data(), nullptr) != 1) {
    return OpenSslError("cannot initialise AES-256-GCM");
  }
  int len = 0;
  if (!aad.empty() &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) {
    return OpenSslError("AES-256-GCM AAD failed");
  }
  std::vector<uint8_t> out(ct_size);
  int written = 0;
  if (ct_size > 0 && EVP_DecryptUpdate(ctx.get(), out.data(), &written, sealed.data(),
                                       static_cast<int>(ct_size)) != 1) {
    return OpenSslError("AES-256-GCM decryption failed");
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kGcmTagSize,
                          const_cast<uint8_t*>(sealed.data() + ct_size)) != 1) {
    return OpenSslError("cannot set the AES-256-GCM tag");
  }
  // EVP_DecryptFinal_ex compares the tag in constant time.
  if (EVP_DecryptFinal_ex(ctx.get(), out.data() + written, &len) != 1) {
    OPENSSL_cleanse(out.data(), out.size());
    DrainOpenSslErrors();
    return absl::UnauthenticatedError("AES-256-GCM tag mismatch: ciphertext or AAD tampered");
  }
  return out;
}

}  // namespace fedattn::crypto
