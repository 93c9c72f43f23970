// Mask derivation and expansion for SecAgg+ (Bonawitz et al., CCS 2017, §4; Bell et al., CCS
// 2020, §3). A mask is the AES-128-CTR keystream (zero IV) of a 16-byte key, read as
// little-endian 32-bit words and added or subtracted mod 2^32.
#pragma once

#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fedattn/crypto/secret_bytes.h"
#include "fedattn/secagg/config.h"

namespace fedattn::secagg {

struct MaskStream {
  crypto::Key16 key;
  bool subtract = false;  // subtract the keystream instead of adding it
};

// words += Σ ±PRG(stream.key)[0..words.size()) mod 2^32. The streams are expanded in cache-sized
// chunks straight into a scratch buffer with one large EVP_EncryptUpdate per stream and chunk,
// then added in place, so the cost is the AES-CTR speed plus one pass in L1/L2 per stream.
[[nodiscard]] absl::Status ApplyMasks(std::span<const MaskStream> streams,
                                      std::span<uint32_t> words);

// acc += x mod 2^32, element-wise. REQUIRES: equal sizes.
void AddWords(std::span<uint32_t> acc, std::span<const uint32_t> x);

// The pairwise mask key of sites a and b from their X25519 shared secret:
// HKDF-SHA256(secret, info = "fedattn/secagg/v1/pair-mask" | job | round | min(a,b) | max(a,b)).
[[nodiscard]] absl::StatusOr<crypto::Key16> PairwiseMaskKey(const crypto::Key32& shared_secret,
                                                            absl::string_view job_id,
                                                            uint64_t round, SiteId a, SiteId b);

// The self-mask key of `site` from its seed b: HKDF-SHA256(b, info = "…/self-mask" | job |
// round | site).
[[nodiscard]] absl::StatusOr<crypto::Key16> SelfMaskKey(const crypto::Key32& seed,
                                                        absl::string_view job_id, uint64_t round,
                                                        SiteId site);

// Whether `site` adds (true) or subtracts (false) its pairwise mask with `peer`: the smaller id
// adds, so the two masks cancel in the sum (Bonawitz §3.2).
inline bool AddsPairwiseMask(SiteId site, SiteId peer) { return site < peer; }

}  // namespace fedattn::secagg
