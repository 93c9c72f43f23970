#include "fedattn/rpc/secagg_wire.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"

namespace fedattn::rpc {
namespace {

template <size_t N>
std::string Bytes(const std::array<uint8_t, N>& bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), N);
}

std::string Indexed(absl::string_view field, size_t index) { return absl::StrCat(field, "[", index, "]"); }

template <size_t N>
absl::Status CopyFixed(const std::string& in, absl::string_view field, std::array<uint8_t, N>* out) {
  if (in.size() != N) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": expected ", N, " bytes, got ", in.size()));
  }
  std::copy(in.begin(), in.end(), out->begin());
  return absl::OkStatus();
}

absl::StatusOr<secagg::KeyAdvertisement> AdvertisementFromProto(const v1::SecAggKeyAdvertisement& in,
                                                                absl::string_view field, absl::string_view job_id,
                                                                uint64_t round) {
  secagg::KeyAdvertisement out;
  out.job_id = std::string(job_id);
  out.round = round;
  out.sender = in.sender();
  RETURN_IF_ERROR(CopyFixed(in.encryption_key(), absl::StrCat(field, ".encryption_key"), &out.encryption_key));
  RETURN_IF_ERROR(CopyFixed(in.mask_key(), absl::StrCat(field, ".mask_key"), &out.mask_key));
  RETURN_IF_ERROR(
      CopyFixed(in.self_mask_commitment(), absl::StrCat(field, ".self_mask_commitment"), &out.self_mask_commitment));
  RETURN_IF_ERROR(CopyFixed(in.signature(), absl::StrCat(field, ".signature"), &out.signature));
  return out;
}

void SharesToProto(const std::vector<secagg::EncryptedShare>& in,
                   google::protobuf::RepeatedPtrField<v1::SecAggEncryptedShare>* out) {
  out->Reserve(static_cast<int>(in.size()));
  for (const secagg::EncryptedShare& share : in) {
    v1::SecAggEncryptedShare* proto = out->Add();
    proto->set_sender(share.sender);
    proto->set_recipient(share.recipient);
    proto->set_ciphertext(reinterpret_cast<const char*>(share.ciphertext.data()), share.ciphertext.size());
  }
}

absl::StatusOr<std::vector<secagg::EncryptedShare>> SharesFromProto(
    const google::protobuf::RepeatedPtrField<v1::SecAggEncryptedShare>& in, absl::string_view field) {
  std::vector<secagg::EncryptedShare> out;
  out.reserve(static_cast<size_t>(in.size()));
  for (int i = 0; i < in.size(); ++i) {
    const v1::SecAggEncryptedShare& proto = in.Get(i);
    if (proto.ciphertext().size() != kEncryptedShareBytes) {
      return absl::InvalidArgumentError(absl::StrCat(Indexed(field, static_cast<size_t>(i)), ".ciphertext: expected ",
                                                     kEncryptedShareBytes, " bytes, got ", proto.ciphertext().size()));
    }
    secagg::EncryptedShare share;
    share.sender = proto.sender();
    share.recipient = proto.recipient();
    share.ciphertext.assign(proto.ciphertext().begin(), proto.ciphertext().end());
    out.push_back(std::move(share));
  }
  return out;
}

std::vector<secagg::SiteId> Ids(const google::protobuf::RepeatedField<uint32_t>& in) {
  return std::vector<secagg::SiteId>(in.begin(), in.end());
}

}  // namespace

v1::SecAggKeyAdvertisement ToProto(const secagg::KeyAdvertisement& message) {
  v1::SecAggKeyAdvertisement out;
  out.set_sender(message.sender);
  out.set_encryption_key(Bytes(message.encryption_key));
  out.set_mask_key(Bytes(message.mask_key));
  out.set_self_mask_commitment(Bytes(message.self_mask_commitment));
  out.set_signature(Bytes(message.signature));
  return out;
}

v1::SecAggNeighbourKeys ToProto(const secagg::NeighbourKeys& message) {
  v1::SecAggNeighbourKeys out;
  out.set_recipient(message.recipient);
  out.mutable_participants()->Add(message.participants.begin(), message.participants.end());
  out.mutable_neighbours()->Reserve(static_cast<int>(message.neighbours.size()));
  for (const secagg::KeyAdvertisement& neighbour : message.neighbours) {
    *out.add_neighbours() = ToProto(neighbour);
  }
  return out;
}

v1::SecAggShareKeys ToProto(const secagg::ShareKeysMessage& message) {
  v1::SecAggShareKeys out;
  out.set_sender(message.sender);
  SharesToProto(message.shares, out.mutable_shares());
  return out;
}

v1::SecAggSharesForSite ToProto(const secagg::SharesForSite& message) {
  v1::SecAggSharesForSite out;
  out.set_recipient(message.recipient);
  SharesToProto(message.shares, out.mutable_shares());
  return out;
}

v1::SecAggUnmaskRequest ToProto(const secagg::UnmaskRequest& message) {
  v1::SecAggUnmaskRequest out;
  out.mutable_survivors()->Add(message.survivors.begin(), message.survivors.end());
  out.mutable_dropped()->Add(message.dropped.begin(), message.dropped.end());
  return out;
}

v1::SecAggUnmaskResponse ToProto(const secagg::UnmaskResponse& message) {
  v1::SecAggUnmaskResponse out;
  out.set_sender(message.sender);
  out.mutable_shares()->Reserve(static_cast<int>(message.shares.size()));
  for (const secagg::RevealedShare& share : message.shares) {
    v1::SecAggRevealedShare* proto = out.add_shares();
    proto->set_owner(share.owner);
    proto->set_kind(static_cast<uint32_t>(share.kind));
    proto->set_x(share.share.x);
    std::string y(kShamirValueBytes, '\0');
    for (size_t c = 0; c < crypto::kShamirChunks; ++c) {
      for (size_t b = 0; b < 8; ++b) y[8 * c + b] = static_cast<char>(share.share.y[c] >> (8 * b));
    }
    proto->set_y(std::move(y));
  }
  return out;
}

absl::StatusOr<secagg::KeyAdvertisement> FromProto(const v1::SecAggKeyAdvertisement& message, absl::string_view job_id,
                                                   uint64_t round) {
  return AdvertisementFromProto(message, "SecAggKeyAdvertisement", job_id, round);
}

absl::StatusOr<secagg::NeighbourKeys> FromProto(const v1::SecAggNeighbourKeys& message, absl::string_view job_id,
                                                uint64_t round) {
  secagg::NeighbourKeys out;
  out.job_id = std::string(job_id);
  out.round = round;
  out.recipient = message.recipient();
  out.participants = Ids(message.participants());
  out.neighbours.reserve(static_cast<size_t>(message.neighbours_size()));
  for (int i = 0; i < message.neighbours_size(); ++i) {
    ASSIGN_OR_RETURN(
        secagg::KeyAdvertisement neighbour,
        AdvertisementFromProto(message.neighbours(i), Indexed("SecAggNeighbourKeys.neighbours", static_cast<size_t>(i)),
                               job_id, round));
    out.neighbours.push_back(std::move(neighbour));
  }
  return out;
}

absl::StatusOr<secagg::ShareKeysMessage> FromProto(const v1::SecAggShareKeys& message, absl::string_view job_id,
                                                   uint64_t round) {
  secagg::ShareKeysMessage out;
  out.job_id = std::string(job_id);
  out.round = round;
  out.sender = message.sender();
  ASSIGN_OR_RETURN(out.shares, SharesFromProto(message.shares(), "SecAggShareKeys.shares"));
  return out;
}

absl::StatusOr<secagg::SharesForSite> FromProto(const v1::SecAggSharesForSite& message, absl::string_view job_id,
                                                uint64_t round) {
  secagg::SharesForSite out;
  out.job_id = std::string(job_id);
  out.round = round;
  out.recipient = message.recipient();
  ASSIGN_OR_RETURN(out.shares, SharesFromProto(message.shares(), "SecAggSharesForSite.shares"));
  return out;
}

absl::StatusOr<secagg::UnmaskRequest> FromProto(const v1::SecAggUnmaskRequest& message, absl::string_view job_id,
                                                uint64_t round) {
  secagg::UnmaskRequest out;
  out.job_id = std::string(job_id);
  out.round = round;
  out.survivors = Ids(message.survivors());
  out.dropped = Ids(message.dropped());
  return out;
}

absl::StatusOr<secagg::UnmaskResponse> FromProto(const v1::SecAggUnmaskResponse& message, absl::string_view job_id,
                                                 uint64_t round) {
  secagg::UnmaskResponse out;
  out.job_id = std::string(job_id);
  out.round = round;
  out.sender = message.sender();
  out.shares.reserve(static_cast<size_t>(message.shares_size()));
  for (int i = 0; i < message.shares_size(); ++i) {
    const v1::SecAggRevealedShare& proto = message.shares(i);
    const std::string field = Indexed("SecAggUnmaskResponse.shares", static_cast<size_t>(i));
    secagg::RevealedShare share;
    share.owner = proto.owner();
    switch (proto.kind()) {
      case static_cast<uint32_t>(secagg::ShareKind::kSelfMaskSeed):
        share.kind = secagg::ShareKind::kSelfMaskSeed;
        break;
      case static_cast<uint32_t>(secagg::ShareKind::kMaskKey):
        share.kind = secagg::ShareKind::kMaskKey;
        break;
      default:
        return absl::InvalidArgumentError(
            absl::StrCat(field, ".kind: expected 1 (self-mask seed) or 2 (mask key), got ", proto.kind()));
    }
    if (proto.x() == 0) return absl::InvalidArgumentError(absl::StrCat(field, ".x: a Shamir point is never 0"));
    share.share.x = proto.x();
    const std::string& y = proto.y();
    if (y.size() != kShamirValueBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".y: expected ", kShamirValueBytes, " bytes, got ", y.size()));
    }
    for (size_t c = 0; c < crypto::kShamirChunks; ++c) {
      uint64_t word = 0;
      for (size_t b = 0; b < 8; ++b) word |= uint64_t{static_cast<uint8_t>(y[8 * c + b])} << (8 * b);
      if (word >= crypto::kShamirPrime) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, ".y: word ", c, " is outside the field (not below 2^61 - 1)"));
      }
      share.share.y[c] = word;
    }
    out.shares.push_back(std::move(share));
  }
  return out;
}

}  // namespace fedattn::rpc
