// Parameters of one SecAgg+ round (Bell et al., CCS 2020, §3; with a complete graph this is the
// SecAgg of Bonawitz et al., CCS 2017, §4) agreed by the server and every client beforehand,
// and the check that refuses unsafe ones. See docs/secagg.md for how to choose them.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fedattn::secagg {

// A site's number in the round. The Shamir point of a site is id + 1, so ids are < 2^32 - 1.
using SiteId = uint32_t;

// The four stages of the protocol, then the two terminal states.
enum class Stage { kAdvertiseKeys, kShareKeys, kMaskedInput, kUnmask, kDone, kAborted };
absl::string_view StageName(Stage stage);

struct SecAggConfig {
  // Binds every key derivation, signature and message to this job and round. Required.
  std::string job_id;
  // Round number within the job. Default 0.
  uint64_t round = 0;
  // The sites selected for the round (distinct, each < 2^32 - 1); n = sites.size() >= 2.
  std::vector<SiteId> sites;
  // d: 32-bit words per masked vector. Required, > 0.
  uint64_t vector_length = 0;
  // k: neighbours per site in the masking graph. 0 (default) means n - 1, the complete graph.
  // With m participants the graph degree is min(k, m-1), raised by one when it is odd and m is
  // odd (no k-regular graph exists then).
  uint32_t degree = 0;
  // t: shares needed to reconstruct a site's secrets; shares go to the site's k neighbours and
  // itself. 0 (default) means the smallest strict majority floor((k+1)/2) + 1.
  uint32_t threshold = 0;
  // δ: the fraction of sites the round must survive losing (fraction, default 0.1).
  double max_dropout_fraction = 0.1;
  // The largest acceptable probability that a round aborts because some neighbourhood keeps
  // fewer than t members when each site drops independently with probability δ
  // (probability, default 0.01).
  double max_abort_probability = 0.01;
  // Public randomness from which the server draws the neighbour graph (e.g. a hash of the
  // previous global model and the round); clients recompute the graph and check it.
  std::array<uint8_t, 32> graph_seed{};

  // Checks the parameters, with the reason when they cannot be safe: t <= (k+1)/2 (a minority
  // could unmask, the semi-honest threshold of Bonawitz §4, t > n/2 for the complete graph),
  // t > k+1, k too small for δ (abort probability above the bound), n < 2, repeated ids.
  // REQUIRES: called on a Resolved() config, or degree/threshold are resolved internally.
  [[nodiscard]] absl::Status Validate() const;
  // A copy with degree and threshold made explicit, validated.
  [[nodiscard]] absl::StatusOr<SecAggConfig> Resolved() const;
};

// P[Binomial(k+1, 1-δ) < t], union-bounded over the n neighbourhoods for sparse graphs: the
// probability that a round aborts with independent dropouts at rate δ (docs/secagg.md).
double AbortProbability(uint32_t num_sites, uint32_t degree, uint32_t threshold, double dropout);

// The degree of the graph actually built over `participants` sites for a configured degree k.
uint32_t EffectiveDegree(uint32_t configured_degree, uint32_t participants);

}  // namespace fedattn::secagg
