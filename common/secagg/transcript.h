// Private to common/secagg: what both sides compute identically — the signed advertisement
// bytes, the self-mask commitment, the share-encryption key, nonce and AAD.
#pragma once

#include <array>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "bytes.h"
#include "fedattn/crypto/aead.h"
#include "fedattn/crypto/digest.h"
#include "fedattn/crypto/secret_bytes.h"
#include "fedattn/crypto/x25519.h"
#include "fedattn/secagg/messages.h"

namespace fedattn::secagg::internal {

// Bytes covered by the advertisement's Ed25519 signature: label | job | round | sender |
// encryption key | mask key | commitment.
ByteWriter AdvertisementTranscript(const KeyAdvertisement& advertisement);

// SHA-256(label | job | round | site | seed): binds the self-mask seed before it is shared.
crypto::Sha256Digest SelfMaskCommitment(absl::string_view job_id, uint64_t round, SiteId site,
                                        const crypto::Key32& seed);

// AES-256-GCM key for shares between a and b: HKDF-SHA256(X25519(c_a, c_b), info = label | job |
// round | min | max). Both directions use it, with different nonces.
absl::StatusOr<crypto::Key32> ShareEncryptionKey(const crypto::X25519PrivateKey& own,
                                                 const crypto::X25519PublicKey& peer,
                                                 absl::string_view job_id, uint64_t round,
                                                 SiteId a, SiteId b);

// Nonce sender | recipient | 0: unique per key and direction (each is used once per round).
std::array<uint8_t, crypto::kGcmNonceSize> ShareNonce(SiteId sender, SiteId recipient);
ByteWriter ShareAad(absl::string_view job_id, uint64_t round, SiteId sender, SiteId recipient);

// Plaintext of one sealed share: the mask-key share then the self-mask-seed share.
inline constexpr size_t kSharePlaintextBytes = 2 * crypto::kShamirShareBytes;
inline constexpr size_t kShareCiphertextBytes = kSharePlaintextBytes + crypto::kGcmTagSize;

}  // namespace fedattn::secagg::internal
