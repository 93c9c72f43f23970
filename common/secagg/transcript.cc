#include "transcript.h"

#include "fedattn/common/status_macros.h"
#include "fedattn/crypto/hkdf.h"

namespace fedattn::secagg::internal {

ByteWriter AdvertisementTranscript(const KeyAdvertisement& a) {
  ByteWriter w = ByteWriter::Context("fedattn/secagg/v1/advertise", a.job_id, a.round);
  w.U32(a.sender).Bytes(a.encryption_key).Bytes(a.mask_key).Bytes(a.self_mask_commitment);
  return w;
}

crypto::Sha256Digest SelfMaskCommitment(absl::string_view job_id, uint64_t round, SiteId site,
                                        const crypto::Key32& seed) {
  ByteWriter w = ByteWriter::Context("fedattn/secagg/v1/self-mask-commit", job_id, round);
  w.U32(site).Bytes(seed.span());
  return crypto::Sha256(w.span());
}

absl::StatusOr<crypto::Key32> ShareEncryptionKey(const crypto::X25519PrivateKey& own,
                                                 const crypto::X25519PublicKey& peer,
                                                 absl::string_view job_id, uint64_t round,
                                                 SiteId a, SiteId b) {
  ASSIGN_OR_RETURN(const crypto::Key32 shared, own.Agree(peer));
  ByteWriter info = ByteWriter::Context("fedattn/secagg/v1/share-key", job_id, round);
  info.U32(std::min(a, b)).U32(std::max(a, b));
  crypto::Key32 key;
  RETURN_IF_ERROR(crypto::HkdfSha256(shared.span(), {}, info.span(), key.mutable_span()));
  return key;
}

std::array<uint8_t, crypto::kGcmNonceSize> ShareNonce(SiteId sender, SiteId recipient) {
  std::array<uint8_t, crypto::kGcmNonceSize> nonce{};
  for (int i = 0; i < 4; ++i) {
    nonce[i] = static_cast<uint8_t>(sender >> (8 * i));
    nonce[4 + i] = static_cast<uint8_t>(recipient >> (8 * i));
  }
  return nonce;
}

ByteWriter ShareAad(absl::string_view job_id, uint64_t round, SiteId sender, SiteId recipient) {
  ByteWriter w = ByteWriter::Context("fedattn/secagg/v1/share", job_id, round);
  w.U32(sender).U32(recipient);
  return w;
}

}  // namespace fedattn::secagg::internal
