// Continuous Gaussian noise for DP, drawn from a SecureRng (Box–Muller on 53-bit uniforms).
//
// Floating-point samplers leak through their low-order bits (Mironov 2012, "On Significance of
// the Least Significant Bits for Differential Privacy"); where that matters, or where noise must
// survive secure aggregation's integer encoding, use discrete_gaussian.h instead.
//
// Thread safety: the functions use the caller's generator; one generator per thread.
#pragma once

#include <span>

#include "absl/status/status.h"
#include "fedattn/dp/secure_rng.h"

namespace fedattn::dp {

// One N(0, 1) sample.
double SampleStandardGaussian(SecureRng& rng);

// Adds independent N(0, stddev²) noise to every element of `values`, in place.
// For DP-FedAvg, stddev = noise_multiplier * clipping_norm (on the sum of clipped updates).
// Errors: InvalidArgument if stddev is negative or not finite (nothing is modified).
[[nodiscard]] absl::Status AddGaussianNoise(std::span<float> values, double stddev,
                                            SecureRng& rng);
[[nodiscard]] absl::Status AddGaussianNoise(std::span<double> values, double stddev,
                                            SecureRng& rng);

}  // namespace fedattn::dp
