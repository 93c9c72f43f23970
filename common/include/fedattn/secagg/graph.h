// The SecAgg+ masking graph (Bell et al., CCS 2020, §3.2): a k-regular Harary graph over the
// participants after a permutation drawn from public randomness. Each site masks with, and
// gives key shares to, only its neighbours. With k = m - 1 it is the complete graph.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fedattn/secagg/config.h"

namespace fedattn::secagg {

class NeighbourGraph {
 public:
  // Builds the graph over `participants` (distinct, any order) with degree
  // EffectiveDegree(degree, m). The permutation comes from AES-128-CTR keyed by
  // HKDF-SHA256(seed, info = job, round), so every party computes the same graph.
  [[nodiscard]] static absl::StatusOr<NeighbourGraph> Build(std::span<const SiteId> participants,
                                                            uint32_t degree,
                                                            std::span<const uint8_t, 32> seed,
                                                            absl::string_view job_id,
                                                            uint64_t round);

  // The neighbours of `site`, ascending; empty if `site` is not a participant.
  std::span<const SiteId> Neighbours(SiteId site) const;
  bool AreNeighbours(SiteId a, SiteId b) const;
  uint32_t degree() const { return degree_; }

 private:
  uint32_t degree_ = 0;
  std::map<SiteId, std::vector<SiteId>> neighbours_;
};

}  // namespace fedattn::secagg
