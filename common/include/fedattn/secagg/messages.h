// The messages of the four SecAgg+ stages, as plain structs. The state machines produce and
// consume them; a transport (gRPC, in-process) carries them. Every message names its job and
// round, and receivers refuse messages for another. Directions: C = client, S = server.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fedattn/crypto/digest.h"
#include "fedattn/crypto/shamir.h"
#include "fedattn/crypto/signature.h"
#include "fedattn/crypto/x25519.h"
#include "fedattn/secagg/config.h"

namespace fedattn::secagg {

// Stage 0, C→S (Bonawitz §4 round 0 "AdvertiseKeys"): two X25519 public keys, one to encrypt
// key shares and one for pairwise masks, a commitment to the self-mask seed, all signed with
// the site's identity key.
struct KeyAdvertisement {
  std::string job_id;
  uint64_t round = 0;
  SiteId sender = 0;
  crypto::X25519PublicKey encryption_key{};
  crypto::X25519PublicKey mask_key{};
  crypto::Sha256Digest self_mask_commitment{};  // SHA-256 of the seed, domain-separated
  crypto::Ed25519Signature signature{};
};

// Stage 0 → 1, S→C: who advertised, and the advertisements of the recipient's neighbours.
struct NeighbourKeys {
  std::string job_id;
  uint64_t round = 0;
  SiteId recipient = 0;
  std::vector<SiteId> participants;           // every site that advertised (U1), ascending
  std::vector<KeyAdvertisement> neighbours;   // the recipient's neighbours in the graph over U1
};

// One site's key shares for one neighbour, AES-256-GCM sealed under their pairwise key.
struct EncryptedShare {
  SiteId sender = 0;
  SiteId recipient = 0;
  std::vector<uint8_t> ciphertext;  // sealed shares || 16-byte tag
};

// Stage 1, C→S (round 1 "ShareKeys"): one EncryptedShare per neighbour.
struct ShareKeysMessage {
  std::string job_id;
  uint64_t round = 0;
  SiteId sender = 0;
  std::vector<EncryptedShare> shares;
};

// Stage 1 → 2, S→C: the shares addressed to the recipient by neighbours that sent theirs (U2).
struct SharesForSite {
  std::string job_id;
  uint64_t round = 0;
  SiteId recipient = 0;
  std::vector<EncryptedShare> shares;
};

// Stage 2, C→S (round 2 "MaskedInputCollection"): x + self-mask ± pairwise masks, mod 2^32.
struct MaskedInput {
  std::string job_id;
  uint64_t round = 0;
  SiteId sender = 0;
  std::vector<uint32_t> masked;
};

// Stage 2 → 3, S→C: the sites whose masked input arrived, and those in U2 whose did not.
struct UnmaskRequest {
  std::string job_id;
  uint64_t round = 0;
  std::vector<SiteId> survivors;  // U3, ascending
  std::vector<SiteId> dropped;    // U2 \ U3, ascending
};

enum class ShareKind : uint8_t {
  kSelfMaskSeed = 1,  // share of a survivor's self-mask seed b_u
  kMaskKey = 2,       // share of a dropped site's mask private key s_u^SK
};

struct RevealedShare {
  SiteId owner = 0;  // whose secret this is a share of
  ShareKind kind = ShareKind::kSelfMaskSeed;
  crypto::ShamirShare share;
};

// Stage 3, C→S (round 4 "Unmasking"): for each neighbour (and itself), exactly one kind of share.
struct UnmaskResponse {
  std::string job_id;
  uint64_t round = 0;
  SiteId sender = 0;
  std::vector<RevealedShare> shares;
};

// The bytes an advertisement's Ed25519 signature covers: label | job | round | sender |
// encryption key | mask key | commitment (length-prefixed strings, little-endian integers).
std::vector<uint8_t> AdvertisementSignedBytes(const KeyAdvertisement& advertisement);

// Payload bytes of a message: the sizes of its fields (ids 4, round 8, keys 32, digests 32,
// signatures 64, shares 45, ciphertexts and vectors as long as they are), framing excluded.
uint64_t WireSize(const KeyAdvertisement& message);
uint64_t WireSize(const NeighbourKeys& message);
uint64_t WireSize(const ShareKeysMessage& message);
uint64_t WireSize(const SharesForSite& message);
uint64_t WireSize(const MaskedInput& message);
uint64_t WireSize(const UnmaskRequest& message);
uint64_t WireSize(const UnmaskResponse& message);

}  // namespace fedattn::secagg
