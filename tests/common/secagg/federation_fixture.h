// A small in-process federation for the SecAgg client and server tests: identities, directory,
// clients and server built from a seed, with helpers that drive each stage for everyone.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <vector>

#include "fedattn/crypto/prg.h"
#include "fedattn/crypto/signature.h"
#include "fedattn/secagg/client.h"
#include "fedattn/secagg/server.h"

namespace fedattn::secagg::testing {

inline SecAggConfig MakeConfig(uint32_t n, uint32_t k, uint32_t t, uint64_t d) {
  SecAggConfig config;
  config.job_id = "job-secagg-test";
  config.round = 3;
  for (uint32_t i = 0; i < n; ++i) config.sites.push_back(100 + 7 * i);
  config.vector_length = d;
  config.degree = k;
  config.threshold = t;
  config.max_abort_probability = 1.0;  // tests choose their dropouts explicitly
  config.graph_seed[0] = 0x5e;
  return config;
}

struct Federation {
  SecAggConfig config;
  std::shared_ptr<PeerDirectory> directory = std::make_shared<PeerDirectory>();
  std::map<SiteId, crypto::PKeyPtr> identities;
  std::map<SiteId, std::unique_ptr<SecAggClient>> clients;
  std::unique_ptr<SecAggServer> server;

  explicit Federation(const SecAggConfig& c, uint64_t seed = 1) : config(c) {
    crypto::DeterministicRandom random(seed);
    for (SiteId site : config.sites) {
      crypto::Key32 raw;
      EXPECT_TRUE(random.Fill(raw.mutable_span()).ok());
      auto key = crypto::Ed25519PrivateKeyFromRaw(raw.span());
      EXPECT_TRUE(key.ok());
      EXPECT_TRUE(directory->Add(site, key->get()).ok());
      identities[site] = std::move(key).value();
    }
    for (SiteId site : config.sites) {
      auto client = SecAggClient::Create(
          config, site, identities[site].get(), directory,
          std::make_unique<crypto::DeterministicRandom>(seed * 1000003 + site));
      EXPECT_TRUE(client.ok()) << client.status();
      clients[site] = std::move(client).value();
    }
    auto s = SecAggServer::Create(config, directory);
    EXPECT_TRUE(s.ok()) << s.status();
    server = std::move(s).value();
  }

  SecAggClient& client(SiteId site) { return *clients.at(site); }

  // Stage 0 for every site not in `silent`; returns the server's NeighbourKeys.
  std::vector<NeighbourKeys> Advertise(const std::set<SiteId>& silent = {}) {
    for (auto& [site, client] : clients) {
      if (silent.count(site)) continue;
      auto message = client->AdvertiseKeys();
      EXPECT_TRUE(message.ok()) << message.status();
      EXPECT_TRUE(server->HandleAdvertisement(*message).ok());
    }
    auto keys = server->FinishAdvertise();
    EXPECT_TRUE(keys.ok()) << keys.status();
    return keys.ok() ? *keys : std::vector<NeighbourKeys>{};
  }

  std::vector<SharesForSite> ShareKeys(const std::vector<NeighbourKeys>& keys,
                                       const std::set<SiteId>& silent = {}) {
    for (const NeighbourKeys& message : keys) {
      if (silent.count(message.recipient)) continue;
      auto reply = client(message.recipient).ShareKeys(message);
      EXPECT_TRUE(reply.ok()) << reply.status();
      EXPECT_TRUE(server->HandleShareKeys(*reply).ok());
    }
    auto routed = server->FinishShareKeys();
    EXPECT_TRUE(routed.ok()) << routed.status();
    return routed.ok() ? *routed : std::vector<SharesForSite>{};
  }

  // Stage 2 with input x_u[i] = site + i; returns the masked inputs by site.
  std::map<SiteId, MaskedInput> Mask(const std::vector<SharesForSite>& routed,
                                     const std::set<SiteId>& silent = {}) {
    std::map<SiteId, MaskedInput> out;
    for (const SharesForSite& message : routed) {
      if (silent.count(message.recipient)) continue;
      auto reply = client(message.recipient).MaskInput(message, Input(message.recipient));
      EXPECT_TRUE(reply.ok()) << reply.status();
      EXPECT_TRUE(server->HandleMaskedInput(*reply).ok());
      out[message.recipient] = std::move(reply).value();
    }
    return out;
  }

  std::vector<uint32_t> Input(SiteId site) const {
    std::vector<uint32_t> x(config.vector_length);
    for (size_t i = 0; i < x.size(); ++i) x[i] = site * 1000 + static_cast<uint32_t>(i);
    return x;
  }
};

}  // namespace fedattn::secagg::testing
