#include "fedattn/secagg/messages.h"

#include "transcript.h"

namespace fedattn::secagg {
namespace {

constexpr uint64_t kId = 4;
constexpr uint64_t kRound = 8;
constexpr uint64_t kKey = 32;

uint64_t Header(const std::string& job_id) { return kId + job_id.size() + kRound + kId; }

uint64_t SharesSize(const std::vector<EncryptedShare>& shares) {
  uint64_t total = 0;
  for (const EncryptedShare& share : shares) total += 2 * kId + share.ciphertext.size();
  return total;
}

}  // namespace

std::vector<uint8_t> AdvertisementSignedBytes(const KeyAdvertisement& advertisement) {
  const auto bytes = internal::AdvertisementTranscript(advertisement);
  return {bytes.span().begin(), bytes.span().end()};
}

uint64_t WireSize(const KeyAdvertisement& m) {
  return Header(m.job_id) + 2 * kKey + m.self_mask_commitment.size() + m.signature.size();
}

uint64_t WireSize(const NeighbourKeys& m) {
  uint64_t total = Header(m.job_id) + kId * m.participants.size();
  for (const KeyAdvertisement& a : m.neighbours) total += WireSize(a);
  return total;
}

uint64_t WireSize(const ShareKeysMessage& m) { return Header(m.job_id) + SharesSize(m.shares); }
uint64_t WireSize(const SharesForSite& m) { return Header(m.job_id) + SharesSize(m.shares); }
uint64_t WireSize(const MaskedInput& m) { return Header(m.job_id) + 4 * m.masked.size(); }

uint64_t WireSize(const UnmaskRequest& m) {
  return Header(m.job_id) + kId * (m.survivors.size() + m.dropped.size());
}

uint64_t WireSize(const UnmaskResponse& m) {
  return Header(m.job_id) + m.shares.size() * (kId + 1 + crypto::kShamirShareBytes);
}

}  // namespace fedattn::secagg
