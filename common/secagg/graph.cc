#include "fedattn/secagg/graph.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "bytes.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/crypto/hkdf.h"
#include "fedattn/crypto/prg.h"
#include "fedattn/crypto/secret_bytes.h"

namespace fedattn::secagg {
namespace {

// Uniform integer in [0, bound) by rejection (no modulo bias).
absl::StatusOr<uint64_t> Uniform(crypto::Aes128CtrPrg& prg, uint64_t bound) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  for (;;) {
    uint64_t v = 0;
    RETURN_IF_ERROR(prg.Fill(std::span(reinterpret_cast<uint8_t*>(&v), sizeof(v))));
    if (v < limit) return v % bound;
  }
}

}  // namespace

absl::StatusOr<NeighbourGraph> NeighbourGraph::Build(std::span<const SiteId> participants,
                                                     uint32_t degree,
                                                     std::span<const uint8_t, 32> seed,
                                                     absl::string_view job_id, uint64_t round) {
  std::vector<SiteId> ring(participants.begin(), participants.end());
  std::sort(ring.begin(), ring.end());
  if (std::adjacent_find(ring.begin(), ring.end()) != ring.end()) {
    return absl::InvalidArgumentError("secagg graph: repeated participant");
  }
  const uint32_t m = static_cast<uint32_t>(ring.size());
  NeighbourGraph graph;
  graph.degree_ = EffectiveDegree(degree, m);

  // Public-coin permutation (Fisher-Yates) from a PRG keyed by the seed.
  crypto::Key16 key;
  const auto info = internal::ByteWriter::Context("fedattn/secagg/v1/graph", job_id, round);
  RETURN_IF_ERROR(crypto::HkdfSha256(seed, {}, info.span(), key.mutable_span()));
  ASSIGN_OR_RETURN(crypto::Aes128CtrPrg prg, crypto::Aes128CtrPrg::Create(key.span()));
  for (uint32_t i = m; i > 1; --i) {
    ASSIGN_OR_RETURN(const uint64_t j, Uniform(prg, i));
    std::swap(ring[i - 1], ring[j]);
  }

  // Harary graph H(k, m): ring neighbours within k/2, plus the opposite vertex when k is odd
  // (then m is even). Harary 1962; Bell et al. 2020 §3.2.
  const uint32_t half = graph.degree_ / 2;
  for (uint32_t i = 0; i < m; ++i) {
    std::set<SiteId> adjacent;
    for (uint32_t j = 1; j <= half; ++j) {
      adjacent.insert(ring[(i + j) % m]);
      adjacent.insert(ring[(i + m - j) % m]);
    }
    if (graph.degree_ % 2 == 1) adjacent.insert(ring[(i + m / 2) % m]);
    adjacent.erase(ring[i]);
    graph.neighbours_[ring[i]] = std::vector<SiteId>(adjacent.begin(), adjacent.end());
  }
  return graph;
}

std::span<const SiteId> NeighbourGraph::Neighbours(SiteId site) const {
  auto it = neighbours_.find(site);
  if (it == neighbours_.end()) return {};
  return it->second;
}

bool NeighbourGraph::AreNeighbours(SiteId a, SiteId b) const {
  const std::span<const SiteId> n = Neighbours(a);
  return std::binary_search(n.begin(), n.end(), b);
}

}  // namespace fedattn::secagg
