// Fused, vectorisable kernels for weighted sums of flat float buffers (the FedAvg inner loop).
// Pure functions on caller-owned memory; thread-compatible (no shared state).
#pragma once

#include <cstddef>
#include <span>

namespace fedattn::coordinator::strategy {

// acc[i] (+)= Σ_k weights[k] · updates[k][i] for i in [begin, acc.size()), in one pass that reads
// each update once, block by block (blocks start at multiples of kAggregationBlock). With
// `overwrite` the old content of acc is ignored (treated as zero) and never read.
// A block whose result would hold a NaN or ±Inf is left untouched and the pass stops there.
// Returns the start of that block, or acc.size() when every block was written.
// REQUIRES: updates.size() == weights.size(); each updates[k] points at >= acc.size() floats
// that do not overlap acc.
inline constexpr std::size_t kAggregationBlock = 8192;  // floats; 32 KiB of running sum
std::size_t FusedWeightedSum(std::span<float> acc, std::span<const float* const> updates,
                             std::span<const float> weights, std::size_t begin, bool overwrite);

// acc[i] -= weight · update[i] for i in [0, end): undoes an earlier FusedWeightedSum contribution
// (up to float rounding). REQUIRES: update points at >= end floats; end <= acc.size().
void SubtractWeighted(std::span<float> acc, const float* update, float weight, std::size_t end);

// Index of the first NaN or ±Inf in `values`, or values.size() when all are finite.
std::size_t FirstNonFinite(std::span<const float> values);

// Sum of all elements (the float32 sum-reduce used as the bandwidth baseline in the bench).
float SumReduce(std::span<const float> values);

}  // namespace fedattn::coordinator::strategy
