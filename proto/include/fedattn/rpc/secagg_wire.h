// SecAgg+ messages between the plain structs of fedattn/secagg/messages.h (what the state
// machines speak) and their protobuf form (what SecAggStep carries). Masked inputs are not here:
// they travel as a U32 tensor stream (tensor_stream.h).
//
// The proto messages carry neither job id nor round: both come from the RoundRef of the
// enclosing call, which the coordinator has already checked, so FromProto takes them as
// arguments and stamps them on the struct (the state machines then refuse a mismatch).
//
// FromProto checks only what the wire form can get wrong, before any cryptography runs: byte
// lengths (X25519 keys and the self-mask commitment 32, Ed25519 signatures 64, share ciphertexts
// kEncryptedShareBytes, Shamir values kShamirChunks little-endian words each below
// kShamirPrime, Shamir points nonzero) and the share kind (1 or 2). A violation is
// INVALID_ARGUMENT naming the field, e.g. "SecAggNeighbourKeys.neighbours[2].mask_key: expected
// 32 bytes, got 31". Whether ids, graph and signatures make sense is the state machines' job.
// All functions are pure and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fedattn/crypto/aead.h"
#include "fedattn/crypto/shamir.h"
#include "fedattn/secagg/messages.h"
#include "fedattn/v1/fedattn.pb.h"

namespace fedattn::rpc {

// A sealed pair of Shamir shares (mask key, self-mask seed) with its AES-GCM tag, as the
// SecAgg client produces it.
inline constexpr size_t kEncryptedShareBytes = 2 * crypto::kShamirShareBytes + crypto::kGcmTagSize;
// A revealed share's value: kShamirChunks little-endian 64-bit words.
inline constexpr size_t kShamirValueBytes = 8 * crypto::kShamirChunks;

v1::SecAggKeyAdvertisement ToProto(const secagg::KeyAdvertisement& message);
// Sets recipient, participants and neighbours; the encoding fields (weight_scale,
// coordinate_clip, max_sites) are the caller's to fill.
v1::SecAggNeighbourKeys ToProto(const secagg::NeighbourKeys& message);
v1::SecAggShareKeys ToProto(const secagg::ShareKeysMessage& message);
v1::SecAggSharesForSite ToProto(const secagg::SharesForSite& message);
v1::SecAggUnmaskRequest ToProto(const secagg::UnmaskRequest& message);
v1::SecAggUnmaskResponse ToProto(const secagg::UnmaskResponse& message);

[[nodiscard]] absl::StatusOr<secagg::KeyAdvertisement> FromProto(const v1::SecAggKeyAdvertisement& message,
                                                                 absl::string_view job_id, uint64_t round);
[[nodiscard]] absl::StatusOr<secagg::NeighbourKeys> FromProto(const v1::SecAggNeighbourKeys& message,
                                                              absl::string_view job_id, uint64_t round);
[[nodiscard]] absl::StatusOr<secagg::ShareKeysMessage> FromProto(const v1::SecAggShareKeys& message,
                                                                 absl::string_view job_id, uint64_t round);
[[nodiscard]] absl::StatusOr<secagg::SharesForSite> FromProto(const v1::SecAggSharesForSite& message,
                                                              absl::string_view job_id, uint64_t round);
[[nodiscard]] absl::StatusOr<secagg::UnmaskRequest> FromProto(const v1::SecAggUnmaskRequest& message,
                                                              absl::string_view job_id, uint64_t round);
[[nodiscard]] absl::StatusOr<secagg::UnmaskResponse> FromProto(const v1::SecAggUnmaskResponse& message,
                                                               absl::string_view job_id, uint64_t round);

}  // namespace fedattn::rpc
