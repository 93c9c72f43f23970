#include "fedattn/crypto/shamir.h"

#include <openssl/crypto.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"

namespace fedattn::crypto {
namespace {

__extension__ typedef unsigned __int128 Uint128;

constexpr uint64_t kP = kShamirPrime;
// Chunk sizes in bytes: 7+7+7+7+4 = 32, every chunk < 2^56 < p.
constexpr std::array<size_t, kShamirChunks> kChunkBytes = {7, 7, 7, 7, 4};

uint64_t Add(uint64_t a, uint64_t b) {
  uint64_t r = a + b;  // < 2^62, no overflow
  return r >= kP ? r - kP : r;
}
uint64_t Sub(uint64_t a, uint64_t b) { return a >= b ? a - b : a + kP - b; }
uint64_t Mul(uint64_t a, uint64_t b) {
  // Mersenne reduction: 2^61 ≡ 1 (mod p).
  const Uint128 product = static_cast<Uint128>(a) * b;
  uint64_t r = (static_cast<uint64_t>(product) & kP) + static_cast<uint64_t>(product >> 61);
  return r >= kP ? r - kP : r;
}
uint64_t Inverse(uint64_t a) {  // Fermat: a^(p-2); REQUIRES a != 0
  uint64_t result = 1, base = a, e = kP - 2;
  while (e != 0) {
    if (e & 1) result = Mul(result, base);
    base = Mul(base, base);
    e >>= 1;
  }
  return result;
}

// A uniform field element by rejection from 61-bit draws.
absl::StatusOr<uint64_t> RandomElement(RandomSource& random) {
  for (;;) {
    uint64_t v = 0;
    RETURN_IF_ERROR(random.Fill(std::span(reinterpret_cast<uint8_t*>(&v), sizeof(v))));
    v &= kP;  // low 61 bits
    if (v < kP) return v;
  }
}

// Lagrange basis values at `at` for the points xs (Shamir 1979; evaluation by interpolation).
std::vector<uint64_t> LagrangeAt(std::span<const uint64_t> xs, uint64_t at) {
  std::vector<uint64_t> coefficients(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) {
    uint64_t num = 1, den = 1;
    for (size_t j = 0; j < xs.size(); ++j) {
      if (j == i) continue;
      num = Mul(num, Sub(at, xs[j]));
      den = Mul(den, Sub(xs[i], xs[j]));
    }
    coefficients[i] = Mul(num, Inverse(den));
  }
  return coefficients;
}

}  // namespace

absl::StatusOr<std::vector<ShamirShare>> ShamirSplit(std::span<const uint8_t, 32> secret,
                                                     uint32_t threshold,
                                                     std::span<const uint32_t> xs,
                                                     RandomSource& random) {
  if (threshold < 1 || threshold > xs.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Shamir threshold ", threshold, " outside 1..", xs.size()));
  }
  std::set<uint32_t> seen;
  for (uint32_t x : xs) {
    if (x == 0 || !seen.insert(x).second) {
      return absl::InvalidArgumentError(absl::StrCat("Shamir point ", x, " is zero or repeated"));
    }
  }
  std::vector<ShamirShare> shares(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) shares[i].x = xs[i];
  std::vector<uint64_t> coefficients(threshold);
  size_t offset = 0;
  for (size_t c = 0; c < kShamirChunks; ++c) {
    uint64_t chunk = 0;
    for (size_t b = 0; b < kChunkBytes[c]; ++b) chunk |= uint64_t{secret[offset + b]} << (8 * b);
    offset += kChunkBytes[c];
    coefficients[0] = chunk;
    for (uint32_t j = 1; j < threshold; ++j) {
      ASSIGN_OR_RETURN(coefficients[j], RandomElement(random));
    }
    for (ShamirShare& share : shares) {  // Horner
      uint64_t y = 0;
      for (uint32_t j = threshold; j-- > 0;) y = Add(Mul(y, share.x), coefficients[j]);
      share.y[c] = y;
    }
  }
  OPENSSL_cleanse(coefficients.data(), coefficients.size() * sizeof(uint64_t));
  return shares;
}

absl::StatusOr<Key32> ShamirCombine(std::span<const ShamirShare> shares, uint32_t threshold) {
  if (threshold < 1 || shares.size() < threshold) {
    return absl::InvalidArgumentError(absl::StrCat("Shamir reconstruction needs ", threshold,
                                                   " shares, got ", shares.size()));
  }
  std::set<uint32_t> seen;
  for (const ShamirShare& share : shares) {
    if (share.x == 0 || !seen.insert(share.x).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("Shamir point ", share.x, " is zero or repeated"));
    }
    for (uint64_t y : share.y) {
      if (y >= kP) return absl::InvalidArgumentError("Shamir share value outside the field");
    }
  }
  std::vector<uint64_t> xs(threshold);
  for (uint32_t i = 0; i < threshold; ++i) xs[i] = shares[i].x;
  const std::vector<uint64_t> at_zero = LagrangeAt(xs, 0);
  std::vector<std::vector<uint64_t>> at_extra;
  for (size_t e = threshold; e < shares.size(); ++e) at_extra.push_back(LagrangeAt(xs, shares[e].x));

  Key32 secret;
  size_t offset = 0;
  for (size_t c = 0; c < kShamirChunks; ++c) {
    uint64_t chunk = 0;
    for (uint32_t i = 0; i < threshold; ++i) chunk = Add(chunk, Mul(at_zero[i], shares[i].y[c]));
    for (size_t e = 0; e < at_extra.size(); ++e) {
      uint64_t y = 0;
      for (uint32_t i = 0; i < threshold; ++i) y = Add(y, Mul(at_extra[e][i], shares[i].y[c]));
      if (y != shares[threshold + e].y[c]) {
        return absl::DataLossError(absl::StrCat("Shamir share at point ", shares[threshold + e].x,
                                                " is inconsistent with the others (tampered?)"));
      }
    }
    if (chunk >> (8 * kChunkBytes[c]) != 0) {
      return absl::DataLossError("Shamir shares reconstruct to no valid secret (tampered?)");
    }
    for (size_t b = 0; b < kChunkBytes[c]; ++b) {
      secret.data()[offset + b] = static_cast<uint8_t>(chunk >> (8 * b));
    }
    offset += kChunkBytes[c];
  }
  return secret;
}

void EncodeShamirShare(const ShamirShare& share, std::span<uint8_t, kShamirShareBytes> out) {
  for (size_t b = 0; b < 4; ++b) out[b] = static_cast<uint8_t>(share.x >> (8 * b));
  for (size_t c = 0; c < kShamirChunks; ++c) {
    for (size_t b = 0; b < 8; ++b) out[4 + 8 * c + b] = static_cast<uint8_t>(share.y[c] >> (8 * b));
  }
}

absl::StatusOr<ShamirShare> DecodeShamirShare(std::span<const uint8_t> bytes) {
  if (bytes.size() != kShamirShareBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("a Shamir share is ", kShamirShareBytes, " bytes, got ", bytes.size()));
  }
  ShamirShare share;
  for (size_t b = 0; b < 4; ++b) share.x |= uint32_t{bytes[b]} << (8 * b);
  for (size_t c = 0; c < kShamirChunks; ++c) {
    for (size_t b = 0; b < 8; ++b) share.y[c] |= uint64_t{bytes[4 + 8 * c + b]} << (8 * b);
    if (share.y[c] >= kP) return absl::InvalidArgumentError("Shamir share value outside the field");
  }
  if (share.x == 0) return absl::InvalidArgumentError("Shamir share at point 0");
  return share;
}

}  // namespace fedattn::crypto
