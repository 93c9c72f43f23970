#include "fedattn/crypto/prg.h"

#include <openssl/rand.h>

#include <climits>

#include "fedattn/common/status_macros.h"
#include "fedattn/crypto/digest.h"
#include "fedattn/crypto/openssl_error.h"

namespace fedattn::crypto {

const EVP_CIPHER* Aes128CtrCipher() {
  // Explicit fetch once: EVP_aes_128_ctr() would re-fetch the provider implementation per init.
  static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-128-CTR", nullptr);
  return cipher;
}

absl::StatusOr<Aes128CtrPrg> Aes128CtrPrg::Create(std::span<const uint8_t, kKeySize> key,
                                                  std::span<const uint8_t, kIvSize> iv) {
  const EVP_CIPHER* cipher = Aes128CtrCipher();
  if (cipher == nullptr) return OpenSslError("AES-128-CTR is unavailable");
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return OpenSslError("cannot allocate a cipher context");
  if (EVP_EncryptInit_ex2(ctx.get(), cipher, key.data(), iv.data(), nullptr) != 1) {
    return OpenSslError("cannot initialise AES-128-CTR");
  }
  return Aes128CtrPrg(std::move(ctx));
}

absl::Status Aes128CtrPrg::Xor(std::span<const uint8_t> in, std::span<uint8_t> out) {
  if (out.size() < in.size()) return absl::InvalidArgumentError("output shorter than input");
  // EVP_EncryptUpdate takes an int length: feed at most 1 GiB per call.
  constexpr size_t kMaxCall = size_t{1} << 30;
  for (size_t offset = 0; offset < in.size(); offset += kMaxCall) {
    const size_t len = std::min(kMaxCall, in.size() - offset);
    int written = 0;
    if (EVP_EncryptUpdate(ctx_.get(), out.data() + offset, &written, in.data() + offset,
                          static_cast<int>(len)) != 1 ||
        static_cast<size_t>(written) != len) {
      return OpenSslError("AES-128-CTR expansion failed");
    }
  }
  return absl::OkStatus();
}

absl::Status Aes128CtrPrg::Fill(std::span<uint8_t> out) {
  std::fill(out.begin(), out.end(), uint8_t{0});
  return Xor(out, out);
}

absl::Status SystemRandom::Fill(std::span<uint8_t> out) {
  constexpr size_t kMaxCall = INT_MAX;
  for (size_t offset = 0; offset < out.size(); offset += kMaxCall) {
    const size_t len = std::min(kMaxCall, out.size() - offset);
    if (RAND_bytes(out.data() + offset, static_cast<int>(len)) != 1) {
      return OpenSslError("RAND_bytes failed");
    }
  }
  return absl::OkStatus();
}

DeterministicRandom::DeterministicRandom(uint64_t seed) {
  std::array<uint8_t, 8> seed_bytes;
  for (size_t i = 0; i < 8; ++i) seed_bytes[i] = static_cast<uint8_t>(seed >> (8 * i));
  const Sha256Digest digest = Sha256(std::span<const uint8_t>(seed_bytes));
  auto prg = Aes128CtrPrg::Create(std::span<const uint8_t, 16>(digest.data(), 16));
  if (prg.ok()) prg_ = std::make_unique<Aes128CtrPrg>(std::move(prg).value());
}

absl::Status DeterministicRandom::Fill(std::span<uint8_t> out) {
  if (!prg_) return absl::InternalError("DeterministicRandom: AES-128-CTR unavailable");
  return prg_->Fill(out);
}

}  // namespace fedattn::crypto
