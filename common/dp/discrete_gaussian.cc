#include "fedattn/dp/discrete_gaussian.h"

#include <array>
#include <bit>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace fedattn::dp {
namespace {

__extension__ typedef unsigned __int128 Uint128;

// Just enough unsigned multi-precision arithmetic for CKS's rational coins. The largest value is
// the acceptance numerator (|y|·den·t - num)² < (2^63 · 2^62 · 2^32)² = 2^314 < 2^384.
class BigUint {
 public:
  static constexpr int kLimbs = 6;

  BigUint() = default;
  explicit BigUint(uint64_t v) { limbs_[0] = v; }

  bool FitsU64() const {
    for (int i = 1; i < kLimbs; ++i) {
      if (limbs_[i] != 0) return false;
    }
    return true;
  }
  uint64_t low() const { return limbs_[0]; }

  int BitLength() const {
    for (int i = kLimbs - 1; i >= 0; --i) {
      if (limbs_[i] != 0) return 64 * i + (64 - std::countl_zero(limbs_[i]));
    }
    return 0;
  }

  // Product, truncated to kLimbs limbs; every caller's operands are bounded so nothing is lost.
  friend BigUint operator*(const BigUint& a, const BigUint& b) {
    BigUint r;
    for (int i = 0; i < kLimbs; ++i) {
      if (a.limbs_[i] == 0) continue;
      uint64_t carry = 0;
      for (int j = 0; i + j < kLimbs; ++j) {
        const Uint128 cur = static_cast<Uint128>(a.limbs_[i]) * b.limbs_[j] + r.limbs_[i + j] + carry;
        r.limbs_[i + j] = static_cast<uint64_t>(cur);
        carry = static_cast<uint64_t>(cur >> 64);
      }
    }
    return r;
  }

  // REQUIRES: *this >= b.
  BigUint& operator-=(const BigUint& b) {
    uint64_t borrow = 0;
    for (int i = 0; i < kLimbs; ++i) {
      const Uint128 sub = static_cast<Uint128>(b.limbs_[i]) + borrow;
      borrow = static_cast<Uint128>(limbs_[i]) < sub ? 1 : 0;
      limbs_[i] = static_cast<uint64_t>(static_cast<Uint128>(limbs_[i]) - sub);
    }
    return *this;
  }

  friend bool operator<(const BigUint& a, const BigUint& b) {
    for (int i = kLimbs - 1; i >= 0; --i) {
      if (a.limbs_[i] != b.limbs_[i]) return a.limbs_[i] < b.limbs_[i];
    }
    return false;
  }

  // Uniform in [0, m), by rejection on BitLength(m) random bits. REQUIRES: m >= 1.
  static BigUint UniformBelow(const BigUint& m, SecureRng& rng) {
    if (m.FitsU64()) return BigUint(rng.UniformBelow(m.low()));
    const int bits = m.BitLength();
    const int top = (bits - 1) / 64;
    const uint64_t top_mask = bits % 64 == 0 ? ~uint64_t{0} : (uint64_t{1} << (bits % 64)) - 1;
    while (true) {
      BigUint r;
      for (int i = 0; i <= top; ++i) r.limbs_[i] = rng();
      r.limbs_[top] &= top_mask;
      if (r < m) return r;
    }
  }

 private:
  std::array<uint64_t, kLimbs> limbs_{};
};

// true with probability num / den. REQUIRES: 0 <= num <= den, den >= 1.
bool Bernoulli(const BigUint& num, const BigUint& den, SecureRng& rng) {
  return BigUint::UniformBelow(den, rng) < num;
}

// true with probability exp(-γ), γ = num / den in [0, 1] (CKS 2020, Alg. 1): count K >= 1 while
// Bernoulli(γ/K) succeeds; P(K odd) = exp(-γ).
bool BernoulliExpUnit(const BigUint& num, const BigUint& den, SecureRng& rng) {
  uint64_t k = 1;
  while (Bernoulli(num, den * BigUint(k), rng)) ++k;
  return k % 2 == 1;
}

// true with probability exp(-num/den) for any num >= 0 (CKS 2020, Alg. 1, γ > 1 branch):
// exp(-γ) = exp(-1)^⌊γ⌋ · exp(-(γ - ⌊γ⌋)), with the exp(-1) coins stopping at the first failure.
bool BernoulliExp(BigUint num, const BigUint& den, SecureRng& rng) {
  const BigUint one(1);
  while (den < num) {
    if (!BernoulliExpUnit(one, one, rng)) return false;
    num -= den;
  }
  return BernoulliExpUnit(num, den, rng);
}

uint64_t FloorSqrt(uint64_t x) {
  uint64_t r = static_cast<uint64_t>(std::sqrt(static_cast<double>(x)));
  // Correct the double estimate exactly in integers.
  while (static_cast<Uint128>(r) * r > x) --r;
  while (static_cast<Uint128>(r + 1) * (r + 1) <= x) ++r;
  return r;
}

}  // namespace

bool SampleBernoulliExp(uint64_t numerator, uint64_t denominator, SecureRng& rng) {
  return BernoulliExp(BigUint(numerator), BigUint(denominator), rng);
}

int64_t SampleDiscreteLaplace(uint64_t scale, SecureRng& rng) {
  const BigUint t(scale);
  const BigUint one(1);
  constexpr Uint128 kLimit = Uint128{1} << 63;
  while (true) {
    // X = U + t·V with U uniform in [0, t) accepted w.p. exp(-U/t), V ~ Geometric(1 - e^-1):
    // X ~ Geometric(1 - e^(-1/t)) (CKS 2020, Alg. 2, s = 1).
    const uint64_t u = rng.UniformBelow(scale);
    if (!BernoulliExp(BigUint(u), t, rng)) continue;
    uint64_t v = 0;
    while (BernoulliExpUnit(one, one, rng)) ++v;
    const Uint128 x = static_cast<Uint128>(scale) * v + u;
    if (x >= kLimit) continue;  // not representable: condition on |x| < 2^63 (see header)
    const bool negative = (rng() & 1) != 0;
    if (negative && x == 0) continue;  // so that 0 is not counted twice
    const auto magnitude = static_cast<int64_t>(x);
    return negative ? -magnitude : magnitude;
  }
}

absl::StatusOr<DiscreteGaussianSampler> DiscreteGaussianSampler::Create(
    uint64_t sigma2_numerator, uint64_t sigma2_denominator) {
  if (sigma2_numerator < 1 || sigma2_numerator > kMaxPart || sigma2_denominator < 1 ||
      sigma2_denominator > kMaxPart) {
    return absl::InvalidArgumentError(absl::StrCat(
        "discrete Gaussian variance ", sigma2_numerator, "/", sigma2_denominator,
        " needs numerator and denominator in [1, 2^62]"));
  }
  return DiscreteGaussianSampler(sigma2_numerator, sigma2_denominator);
}

absl::StatusOr<DiscreteGaussianSampler> DiscreteGaussianSampler::CreateFromStddev(double sigma) {
  constexpr double kScale = 0x1.0p20;
  const double sigma2 = sigma * sigma;
  if (!(sigma > 0.0 && sigma2 >= 1.0 / kScale && sigma2 <= 0x1.0p42)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "discrete Gaussian stddev ", sigma, " must have variance in [2^-20, 2^42]"));
  }
  // σ²·2^20 <= 2^62 is exact in a double's range; ceil rounds the variance up, never down.
  // The product of two doubles is rounded, so bump by one unit when rounding might have lost.
  const double scaled = std::ceil(sigma2 * kScale);
  auto num = static_cast<uint64_t>(scaled);
  if (std::fma(sigma, sigma * kScale, -scaled) > 0.0) ++num;
  return Create(num, static_cast<uint64_t>(kScale));
}

DiscreteGaussianSampler::DiscreteGaussianSampler(uint64_t num, uint64_t den)
    : num_(num), den_(den), t_(FloorSqrt(num / den) + 1) {}  // ⌊√(n/d)⌋ = ⌊√⌊n/d⌋⌋

int64_t DiscreteGaussianSampler::Sample(SecureRng& rng) const {
  const BigUint num(num_);
  const BigUint dt = BigUint(den_) * BigUint(t_);
  // Acceptance exp(-(|y| - σ²/t)² / (2σ²)) with σ² = n/d, in integers:
  //   (|y|·d·t - n)² / (2·n·d·t²)   (CKS 2020, Alg. 3, step 3).
  const BigUint denominator = BigUint(2) * num * dt * BigUint(t_);
  while (true) {
    const int64_t y = SampleDiscreteLaplace(t_, rng);
    const uint64_t magnitude = y < 0 ? uint64_t{0} - static_cast<uint64_t>(y)
                                     : static_cast<uint64_t>(y);
    BigUint scaled = BigUint(magnitude) * dt;
    BigUint diff;
    if (num < scaled) {
      diff = scaled;
      diff -= num;
    } else {
      diff = num;
      diff -= scaled;
    }
    if (BernoulliExp(diff * diff, denominator, rng)) return y;
  }
}

void DiscreteGaussianSampler::AddNoise(std::span<uint64_t> values, SecureRng& rng) const {
  for (uint64_t& v : values) v += static_cast<uint64_t>(Sample(rng));  // wraps mod 2^64
}

}  // namespace fedattn::dp
