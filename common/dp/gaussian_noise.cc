#include "fedattn/dp/gaussian_noise.h"

#include <cmath>
#include <numbers>
#include <utility>

#include "absl/strings/str_cat.h"

namespace fedattn::dp {
namespace {

// Box–Muller (Box & Muller 1958): two independent N(0, 1) from two uniforms in (0, 1).
// Written out rather than std::normal_distribution so a fixed test seed gives the same noise
// with every standard library.
std::pair<double, double> GaussianPair(SecureRng& rng) {
  const double radius = std::sqrt(-2.0 * std::log(rng.UniformOpen01()));
  const double angle = 2.0 * std::numbers::pi * rng.UniformOpen01();
  return {radius * std::cos(angle), radius * std::sin(angle)};
}

template <typename T>
absl::Status AddNoise(std::span<T> values, double stddev, SecureRng& rng) {
  if (!(stddev >= 0.0 && std::isfinite(stddev))) {
    return absl::InvalidArgumentError(
        absl::StrCat("noise stddev must be finite and >= 0, got ", stddev));
  }
  size_t i = 0;
  for (; i + 2 <= values.size(); i += 2) {
    const auto [a, b] = GaussianPair(rng);
    values[i] = static_cast<T>(values[i] + stddev * a);
    values[i + 1] = static_cast<T>(values[i + 1] + stddev * b);
  }
  if (i < values.size()) values[i] = static_cast<T>(values[i] + stddev * GaussianPair(rng).first);
  return absl::OkStatus();
}

}  // namespace

double SampleStandardGaussian(SecureRng& rng) { return GaussianPair(rng).first; }

absl::Status AddGaussianNoise(std::span<float> values, double stddev, SecureRng& rng) {
  return AddNoise(values, stddev, rng);
}
absl::Status AddGaussianNoise(std::span<double> values, double stddev, SecureRng& rng) {
  return AddNoise(values, stddev, rng);
}

}  // namespace fedattn::dp
