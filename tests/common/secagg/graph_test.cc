#include "fedattn/secagg/graph.h"

#include <gtest/gtest.h>

#include <numeric>

namespace fedattn::secagg {
namespace {

std::vector<SiteId> Ids(uint32_t n) {
  std::vector<SiteId> ids(n);
  std::iota(ids.begin(), ids.end(), 10);
  return ids;
}

NeighbourGraph Build(uint32_t n, uint32_t k, uint8_t seed_byte = 1, uint64_t round = 0) {
  std::array<uint8_t, 32> seed{};
  seed[0] = seed_byte;
  auto graph = NeighbourGraph::Build(Ids(n), k, seed, "job", round);
  EXPECT_TRUE(graph.ok()) << graph.status();
  return std::move(graph).value();
}

class GraphRegularTest : public ::testing::TestWithParam<std::pair<uint32_t, uint32_t>> {};

TEST_P(GraphRegularTest, RegularAndSymmetric) {
  const auto [n, k] = GetParam();
  const NeighbourGraph graph = Build(n, k);
  EXPECT_EQ(graph.degree(), EffectiveDegree(k, n));
  for (SiteId u : Ids(n)) {
    const auto neighbours = graph.Neighbours(u);
    EXPECT_EQ(neighbours.size(), graph.degree()) << "site " << u;
    for (SiteId v : neighbours) {
      EXPECT_NE(u, v);
      EXPECT_TRUE(graph.AreNeighbours(v, u));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, GraphRegularTest,
                         ::testing::Values(std::pair{10u, 9u}, std::pair{11u, 10u},
                                           std::pair{100u, 21u}, std::pair{50u, 17u},
                                           std::pair{9u, 3u}, std::pair{2u, 1u},
                                           std::pair{30u, 6u}));

TEST(GraphTest, CompleteWhenDegreeIsNMinusOne) {
  const NeighbourGraph graph = Build(7, 6);
  for (SiteId u : Ids(7)) EXPECT_EQ(graph.Neighbours(u).size(), 6u);
}

TEST(GraphTest, DeterministicUnderSeedAndDifferentOtherwise) {
  const NeighbourGraph a = Build(40, 8, 1), b = Build(40, 8, 1), c = Build(40, 8, 2),
                       d = Build(40, 8, 1, /*round=*/1);
  bool differs_seed = false, differs_round = false;
  for (SiteId u : Ids(40)) {
    const auto na = a.Neighbours(u), nb = b.Neighbours(u);
    EXPECT_TRUE(std::equal(na.begin(), na.end(), nb.begin(), nb.end()));
    const auto nc = c.Neighbours(u), nd = d.Neighbours(u);
    differs_seed |= !std::equal(na.begin(), na.end(), nc.begin(), nc.end());
    differs_round |= !std::equal(na.begin(), na.end(), nd.begin(), nd.end());
  }
  EXPECT_TRUE(differs_seed);
  EXPECT_TRUE(differs_round);
}

TEST(GraphTest, UnknownSiteHasNoNeighboursAndRepeatsRefused) {
  const NeighbourGraph graph = Build(5, 2);
  EXPECT_TRUE(graph.Neighbours(999).empty());
  std::array<uint8_t, 32> seed{};
  const std::vector<SiteId> repeated = {1, 2, 2};
  EXPECT_FALSE(NeighbourGraph::Build(repeated, 1, seed, "job", 0).ok());
}

}  // namespace
}  // namespace fedattn::secagg
