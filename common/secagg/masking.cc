#include "fedattn/secagg/masking.h"

#include <bit>
#include <cstring>
#include <vector>

#include "bytes.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/crypto/hkdf.h"
#include "fedattn/crypto/prg.h"

namespace fedattn::secagg {
namespace {

static_assert(std::endian::native == std::endian::little,
              "masks are little-endian keystream words read in place");

// 64 KiB per stream and chunk: the accumulator, scratch and zero chunks stay in L2 while each
// EVP_EncryptUpdate is long enough to amortise its call overhead (< 1%).
constexpr size_t kChunkWords = 16384;

typedef uint32_t Vec4 __attribute__((vector_size(16)));

// Compiled for AVX2 and baseline; the loader picks one (GCC target_clones, ifunc).
template <bool kSubtract>
__attribute__((target_clones("avx2", "default"))) void Combine(uint32_t* acc, const uint32_t* x,
                                                                size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    Vec4 a[4], b[4];
    std::memcpy(a, acc + i, sizeof(a));
    std::memcpy(b, x + i, sizeof(b));
    for (int j = 0; j < 4; ++j) a[j] = kSubtract ? a[j] - b[j] : a[j] + b[j];
    std::memcpy(acc + i, a, sizeof(a));
  }
  for (; i < n; ++i) acc[i] = kSubtract ? acc[i] - x[i] : acc[i] + x[i];
}

const uint8_t* Zeros() {
  static const std::vector<uint8_t>* const zeros =
      new std::vector<uint8_t>(kChunkWords * sizeof(uint32_t), 0);
  return zeros->data();
}

}  // namespace

void AddWords(std::span<uint32_t> acc, std::span<const uint32_t> x) {
  Combine<false>(acc.data(), x.data(), std::min(acc.size(), x.size()));
}

absl::Status ApplyMasks(std::span<const MaskStream> streams, std::span<uint32_t> words) {
  if (streams.empty() || words.empty()) return absl::OkStatus();
  std::vector<crypto::Aes128CtrPrg> prgs;
  prgs.reserve(streams.size());
  for (const MaskStream& stream : streams) {
    ASSIGN_OR_RETURN(crypto::Aes128CtrPrg prg, crypto::Aes128CtrPrg::Create(stream.key.span()));
    prgs.push_back(std::move(prg));
  }
  std::vector<uint32_t> scratch(std::min(kChunkWords, words.size()));
  const uint8_t* zeros = Zeros();
  for (size_t offset = 0; offset < words.size(); offset += kChunkWords) {
    const size_t len = std::min(kChunkWords, words.size() - offset);
    const std::span<uint8_t> out(reinterpret_cast<uint8_t*>(scratch.data()), len * 4);
    for (size_t s = 0; s < streams.size(); ++s) {
      // The keystream: AES-CTR of zeros, written straight into the word buffer.
      RETURN_IF_ERROR(prgs[s].Xor(std::span(zeros, len * 4), out));
      if (streams[s].subtract) {
        Combine<true>(words.data() + offset, scratch.data(), len);
      } else {
        Combine<false>(words.data() + offset, scratch.data(), len);
      }
    }
  }
  OPENSSL_cleanse(scratch.data(), scratch.size() * sizeof(uint32_t));
  return absl::OkStatus();
}

absl::StatusOr<crypto::Key16> PairwiseMaskKey(const crypto::Key32& shared_secret,
                                              absl::string_view job_id, uint64_t round, SiteId a,
                                              SiteId b) {
  auto info = internal::ByteWriter::Context("fedattn/secagg/v1/pair-mask", job_id, round);
  info.U32(std::min(a, b)).U32(std::max(a, b));
  crypto::Key16 key;
  RETURN_IF_ERROR(crypto::HkdfSha256(shared_secret.span(), {}, info.span(), key.mutable_span()));
  return key;
}

absl::StatusOr<crypto::Key16> SelfMaskKey(const crypto::Key32& seed, absl::string_view job_id,
                                          uint64_t round, SiteId site) {
  auto info = internal::ByteWriter::Context("fedattn/secagg/v1/self-mask", job_id, round);
  info.U32(site);
  crypto::Key16 key;
  RETURN_IF_ERROR(crypto::HkdfSha256(seed.span(), {}, info.span(), key.mutable_span()));
  return key;
}

}  // namespace fedattn::secagg
