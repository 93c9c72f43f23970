#include "fedattn/secagg/client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>

#include "federation_fixture.h"

namespace fedattn::secagg {
namespace {

using ::testing::HasSubstr;
using testing::Federation;
using testing::MakeConfig;

constexpr uint32_t kN = 6;

class ClientTest : public ::testing::Test {
 protected:
  ClientTest() : fed_(MakeConfig(kN, 0, 0, 64)) {}
  SiteId Site(int i) const { return fed_.config.sites[i]; }

  Federation fed_;
};

TEST_F(ClientTest, CallsOutOfOrderRefused) {
  EXPECT_EQ(fed_.client(Site(0)).Unmask(UnmaskRequest{}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(fed_.client(Site(0)).AdvertiseKeys().ok());
  EXPECT_EQ(fed_.client(Site(0)).AdvertiseKeys().status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(ClientTest, MessageForAnotherJobOrRoundRefusedWithoutAborting) {
  auto keys = fed_.Advertise();
  NeighbourKeys message = keys[0];
  message.round += 1;
  EXPECT_EQ(fed_.client(message.recipient).ShareKeys(message).status().code(),
            absl::StatusCode::kInvalidArgument);
  message = keys[0];
  message.job_id = "another-job";
  EXPECT_EQ(fed_.client(message.recipient).ShareKeys(message).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fed_.client(message.recipient).stage(), Stage::kShareKeys);
  EXPECT_TRUE(fed_.client(message.recipient).ShareKeys(keys[0]).ok());
}

TEST_F(ClientTest, SubstitutedKeyRefused) {
  auto keys = fed_.Advertise();
  NeighbourKeys message = keys[0];
  message.neighbours[1].mask_key[0] ^= 1;  // the coordinator swaps in its own key
  auto reply = fed_.client(message.recipient).ShareKeys(message);
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(reply.status().message(), HasSubstr("does not verify"));
  EXPECT_EQ(fed_.client(message.recipient).stage(), Stage::kAborted);
}

TEST_F(ClientTest, UnsignedKeysRefused) {
  // A directory without the neighbour's identity key: its keys cannot be authenticated.
  auto directory = std::make_shared<PeerDirectory>();
  ASSERT_TRUE(directory->Add(Site(0), fed_.identities[Site(0)].get()).ok());
  auto client = SecAggClient::Create(fed_.config, Site(0), fed_.identities[Site(0)].get(),
                                     directory, std::make_unique<crypto::DeterministicRandom>(9));
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->AdvertiseKeys().ok());
  auto keys = fed_.Advertise();
  auto reply = (*client)->ShareKeys(keys[0]);
  EXPECT_THAT(reply.status().message(), HasSubstr("unsigned keys"));
}

TEST_F(ClientTest, DuplicateKeysRefused) {
  auto keys = fed_.Advertise();
  NeighbourKeys twice = keys[0];
  twice.neighbours.push_back(twice.neighbours[0]);
  EXPECT_THAT(fed_.client(twice.recipient).ShareKeys(twice).status().message(),
              HasSubstr("duplicate keys"));

  // A site that re-advertises another site's key under its own valid signature.
  Federation other(MakeConfig(kN, 0, 0, 64));
  auto keys2 = other.Advertise();
  NeighbourKeys copied = keys2[0];
  KeyAdvertisement& a = copied.neighbours[0];
  a.mask_key = copied.neighbours[1].mask_key;
  a.signature = crypto::SignEd25519(other.identities[a.sender].get(),
                                    AdvertisementSignedBytes(a))
                    .value();
  EXPECT_THAT(other.client(copied.recipient).ShareKeys(copied).status().message(),
              HasSubstr("duplicate public key"));
}

TEST_F(ClientTest, NeighbourListNotMatchingTheGraphRefused) {
  Federation sparse(MakeConfig(10, 4, 3, 16));
  auto keys = sparse.Advertise();
  NeighbourKeys missing = keys[0];
  missing.neighbours.pop_back();
  EXPECT_THAT(sparse.client(missing.recipient).ShareKeys(missing).status().message(),
              HasSubstr("neighbours"));
  // A non-neighbour's (validly signed) keys.
  NeighbourKeys stranger = keys[1];
  for (const NeighbourKeys& other : keys) {
    if (other.recipient != stranger.recipient &&
        std::none_of(stranger.neighbours.begin(), stranger.neighbours.end(),
                     [&](const KeyAdvertisement& a) { return a.sender == other.recipient; })) {
      stranger.neighbours[0] = keys[0].neighbours[0];
      for (const NeighbourKeys& k : keys) {
        for (const KeyAdvertisement& a : k.neighbours) {
          if (a.sender == other.recipient) stranger.neighbours[0] = a;
        }
      }
      break;
    }
  }
  EXPECT_THAT(sparse.client(stranger.recipient).ShareKeys(stranger).status().message(),
              HasSubstr("not a neighbour"));
}

TEST_F(ClientTest, TooFewParticipantsRefused) {
  auto keys = fed_.Advertise();
  NeighbourKeys message = keys[0];
  message.participants.resize(2);
  EXPECT_EQ(fed_.client(message.recipient).ShareKeys(message).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(ClientTest, TamperedShareRefusedBeforeMasking) {
  auto routed = fed_.ShareKeys(fed_.Advertise());
  SharesForSite message = routed[0];
  message.shares[0].ciphertext[5] ^= 0x40;
  auto reply = fed_.client(message.recipient).MaskInput(message, fed_.Input(message.recipient));
  EXPECT_THAT(reply.status().message(), HasSubstr("do not decrypt"));
  EXPECT_EQ(fed_.client(message.recipient).stage(), Stage::kAborted);
  // A share relayed to the wrong recipient fails too (the AAD binds both ids).
  SharesForSite misrouted = routed[1];
  misrouted.shares[0].ciphertext = routed[2].shares[0].ciphertext;
  misrouted.shares[0].sender = routed[2].shares[0].sender;
  EXPECT_FALSE(fed_.client(misrouted.recipient).MaskInput(misrouted, fed_.Input(misrouted.recipient)).ok());
}

class UnmaskRefusalTest : public ClientTest {
 protected:
  void SetUp() override {
    fed_.Mask(fed_.ShareKeys(fed_.Advertise()));
    auto request = fed_.server->FinishMaskedInput();
    ASSERT_TRUE(request.ok()) << request.status();
    request_ = *request;
  }
  UnmaskRequest request_;
};

TEST_F(UnmaskRefusalTest, OverlappingListsRefused) {
  UnmaskRequest request = request_;
  request.dropped = {request.survivors[1]};
  auto reply = fed_.client(Site(0)).Unmask(request);
  EXPECT_THAT(reply.status().message(), HasSubstr("both as a survivor and as dropped"));
  EXPECT_EQ(fed_.client(Site(0)).stage(), Stage::kAborted);
}

TEST_F(UnmaskRefusalTest, FewerThanTSurvivorsRefused) {
  UnmaskRequest request = request_;
  request.dropped.assign(request.survivors.begin() + 2, request.survivors.end());
  request.survivors.resize(2);
  EXPECT_THAT(fed_.client(Site(0)).Unmask(request).status().message(),
              HasSubstr("fewer than the threshold"));
}

TEST_F(UnmaskRefusalTest, BothKindsForOnePeerRefusedAcrossRequests) {
  ASSERT_TRUE(fed_.client(Site(0)).Unmask(request_).ok());
  EXPECT_TRUE(fed_.client(Site(0)).Unmask(request_).ok());  // a retransmission is fine
  UnmaskRequest flipped = request_;
  flipped.survivors.erase(std::find(flipped.survivors.begin(), flipped.survivors.end(), Site(1)));
  flipped.dropped = {Site(1)};
  EXPECT_THAT(fed_.client(Site(0)).Unmask(flipped).status().message(),
              HasSubstr("both kinds of share"));
}

TEST_F(UnmaskRefusalTest, NotListedAsSurvivorRefused) {
  UnmaskRequest request = request_;
  request.survivors.erase(request.survivors.begin());
  EXPECT_THAT(fed_.client(Site(0)).Unmask(request).status().message(),
              HasSubstr("not listed as a survivor"));
}

TEST_F(UnmaskRefusalTest, RevealsOneShareKindPerPeer) {
  auto reply = fed_.client(Site(0)).Unmask(request_);
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->shares.size(), kN);  // itself and its 5 neighbours, all survivors
  for (const RevealedShare& r : reply->shares) {
    EXPECT_EQ(r.kind, ShareKind::kSelfMaskSeed);
    EXPECT_EQ(r.share.x, Site(0) + 1);
  }
}

// A masked vector alone looks uniform: chi-square over the byte values of one client's masked
// zero vector, and a monobit count. Deterministic seed, so the outcome is reproducible.
TEST(ClientMaskTest, MaskedVectorIsIndistinguishableFromUniform) {
  constexpr uint64_t kWords = 1 << 16;
  Federation fed(MakeConfig(5, 0, 0, kWords), 77);
  auto routed = fed.ShareKeys(fed.Advertise());
  const std::vector<uint32_t> zeros(kWords, 0);
  auto masked = fed.client(routed[0].recipient).MaskInput(routed[0], zeros);
  ASSERT_TRUE(masked.ok());
  std::array<double, 256> counts{};
  uint64_t ones = 0;
  for (uint32_t w : masked->masked) {
    for (int b = 0; b < 4; ++b) counts[(w >> (8 * b)) & 0xff] += 1;
    ones += std::popcount(w);
  }
  const double expected = kWords * 4 / 256.0;
  double chi2 = 0;
  for (double c : counts) chi2 += (c - expected) * (c - expected) / expected;
  EXPECT_LT(chi2, 255 + 6 * std::sqrt(2 * 255.0));  // df = 255, > 6 sd is p < 1e-6
  const double bits = kWords * 32.0;
  EXPECT_NEAR(static_cast<double>(ones), bits / 2, 6 * std::sqrt(bits / 4));
}

TEST(ClientMaskTest, DeterministicUnderAFixedSeed) {
  auto run = [](uint64_t seed) {
    Federation fed(MakeConfig(4, 0, 0, 32), seed);
    auto routed = fed.ShareKeys(fed.Advertise());
    return fed.Mask(routed).begin()->second.masked;
  };
  EXPECT_EQ(run(5), run(5));
  EXPECT_NE(run(5), run(6));
}

}  // namespace
}  // namespace fedattn::secagg
