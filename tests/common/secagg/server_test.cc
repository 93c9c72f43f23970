#include "fedattn/secagg/server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "federation_fixture.h"

namespace fedattn::secagg {
namespace {

using ::testing::HasSubstr;
using testing::Federation;
using testing::MakeConfig;

constexpr uint32_t kN = 7;  // t = 4 by default

TEST(ServerTest, FullRoundSumsInputs) {
  Federation fed(MakeConfig(kN, 0, 0, 100));
  fed.Mask(fed.ShareKeys(fed.Advertise()));
  auto request = fed.server->FinishMaskedInput();
  ASSERT_TRUE(request.ok());
  EXPECT_TRUE(request->dropped.empty());
  for (SiteId site : request->survivors) {
    auto reply = fed.client(site).Unmask(*request);
    ASSERT_TRUE(reply.ok()) << reply.status();
    ASSERT_TRUE(fed.server->HandleUnmask(*reply).ok());
  }
  auto result = fed.server->FinishUnmask();
  ASSERT_TRUE(result.ok()) << result.status();
  std::vector<uint32_t> expected(100, 0);
  for (SiteId site : fed.config.sites) {
    const auto x = fed.Input(site);
    for (size_t i = 0; i < x.size(); ++i) expected[i] += x[i];
  }
  EXPECT_EQ(result->sum, expected);
  EXPECT_EQ(result->contributors.size(), kN);
  EXPECT_TRUE(result->dropouts.empty());
}

// Messages of a stage that is closed or not open yet, and repeats of accepted ones, are refused
// without aborting the round, and the sum is the one of the in-order messages
// (docs/bad-input.md; the coordinator's SecAggStep refuses them before they get here too).
TEST(ServerTest, OutOfStageAndRepeatedMessagesAreRefusedAndTheSumIsUnchanged) {
  Federation fed(MakeConfig(kN, 0, 0, 16));
  const auto& s = fed.config.sites;
  std::map<SiteId, KeyAdvertisement> adverts;
  for (SiteId site : s) adverts[site] = fed.client(site).AdvertiseKeys().value();
  for (SiteId site : s) ASSERT_TRUE(fed.server->HandleAdvertisement(adverts[site]).ok());
  // Too early: shares, a masked input and an unmask response during the advertisement stage.
  EXPECT_FALSE(fed.server->HandleShareKeys(ShareKeysMessage{.job_id = fed.config.job_id, .round = fed.config.round,
                                                            .sender = s[0]})
                   .ok());
  EXPECT_FALSE(fed.server->HandleMaskedInput(fed.config.job_id, fed.config.round, s[0],
                                             std::vector<uint32_t>(16, 0))
                   .ok());
  EXPECT_FALSE(fed.server->HandleUnmask(UnmaskResponse{.job_id = fed.config.job_id, .round = fed.config.round,
                                                       .sender = s[0]})
                   .ok());
  auto keys = fed.server->FinishAdvertise();
  ASSERT_TRUE(keys.ok()) << keys.status();
  // Too late: an advertisement after its stage closed.
  EXPECT_FALSE(fed.server->HandleAdvertisement(adverts[s[0]]).ok());
  std::map<SiteId, ShareKeysMessage> shares;
  for (const NeighbourKeys& message : *keys) {
    shares[message.recipient] = fed.client(message.recipient).ShareKeys(message).value();
    ASSERT_TRUE(fed.server->HandleShareKeys(shares[message.recipient]).ok());
  }
  EXPECT_FALSE(fed.server->HandleShareKeys(shares[s[1]]).ok()) << "a repeated ShareKeys";
  auto routed = fed.server->FinishShareKeys();
  ASSERT_TRUE(routed.ok()) << routed.status();
  const std::map<SiteId, MaskedInput> masked = fed.Mask(*routed);
  EXPECT_FALSE(fed.server->HandleMaskedInput(masked.at(s[2])).ok()) << "a repeated masked input";
  EXPECT_FALSE(fed.server->HandleShareKeys(shares[s[1]]).ok()) << "ShareKeys after its stage";
  auto request = fed.server->FinishMaskedInput();
  ASSERT_TRUE(request.ok()) << request.status();
  std::optional<UnmaskResponse> first;
  for (SiteId site : request->survivors) {
    auto reply = fed.client(site).Unmask(*request);
    ASSERT_TRUE(reply.ok()) << reply.status();
    ASSERT_TRUE(fed.server->HandleUnmask(*reply).ok());
    if (!first.has_value()) first = *reply;
  }
  EXPECT_FALSE(fed.server->HandleUnmask(*first).ok()) << "a repeated unmask response";
  EXPECT_NE(fed.server->stage(), Stage::kAborted);
  auto result = fed.server->FinishUnmask();
  ASSERT_TRUE(result.ok()) << result.status();
  std::vector<uint32_t> expected(16, 0);
  for (SiteId site : s) {
    const auto x = fed.Input(site);
    for (size_t i = 0; i < x.size(); ++i) expected[i] += x[i];
  }
  EXPECT_EQ(result->sum, expected);
}

TEST(ServerTest, AbortsWhenFewerThanTAdvertiseAndRevealsNothing) {
  Federation fed(MakeConfig(kN, 0, 0, 8));
  const auto& s = fed.config.sites;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(fed.server->HandleAdvertisement(fed.client(s[i]).AdvertiseKeys().value()).ok());
  }
  auto keys = fed.server->FinishAdvertise();
  EXPECT_EQ(keys.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(keys.status().message(), HasSubstr("fewer than the threshold t=4"));
  EXPECT_EQ(fed.server->stage(), Stage::kAborted);
  EXPECT_FALSE(fed.server->FinishShareKeys().ok());
  EXPECT_FALSE(fed.server->FinishUnmask().ok());
}

TEST(ServerTest, AbortsAtMaskedInputBeforeAskingForShares) {
  Federation fed(MakeConfig(kN, 0, 0, 8));
  const auto& s = fed.config.sites;
  auto routed = fed.ShareKeys(fed.Advertise());
  fed.Mask(routed, {s[0], s[1], s[2], s[3]});  // 3 of 7 mask
  auto request = fed.server->FinishMaskedInput();
  EXPECT_EQ(request.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(request.status().message(), HasSubstr("nothing was revealed"));
  EXPECT_EQ(fed.server->stage(), Stage::kAborted);
}

TEST(ServerTest, AbortsWhenFewerThanTAnswerUnmask) {
  Federation fed(MakeConfig(kN, 0, 0, 8));
  fed.Mask(fed.ShareKeys(fed.Advertise()));
  auto request = fed.server->FinishMaskedInput();
  ASSERT_TRUE(request.ok());
  for (int i = 0; i < 3; ++i) {
    const SiteId site = request->survivors[i];
    ASSERT_TRUE(fed.server->HandleUnmask(fed.client(site).Unmask(*request).value()).ok());
  }
  auto result = fed.server->FinishUnmask();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(fed.server->stage(), Stage::kAborted);
}

TEST(ServerTest, BadAdvertisementsRefusedWithoutAborting) {
  Federation fed(MakeConfig(kN, 0, 0, 8));
  const auto& s = fed.config.sites;
  KeyAdvertisement a = fed.client(s[0]).AdvertiseKeys().value();
  KeyAdvertisement forged = a;
  forged.encryption_key[3] ^= 1;
  EXPECT_EQ(fed.server->HandleAdvertisement(forged).code(), absl::StatusCode::kUnauthenticated);
  KeyAdvertisement other_round = a;
  other_round.round += 1;
  EXPECT_EQ(fed.server->HandleAdvertisement(other_round).code(),
            absl::StatusCode::kInvalidArgument);
  KeyAdvertisement stranger = a;
  stranger.sender = 999;
  EXPECT_EQ(fed.server->HandleAdvertisement(stranger).code(), absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(fed.server->HandleAdvertisement(a).ok());
  EXPECT_EQ(fed.server->HandleAdvertisement(a).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(fed.server->stage(), Stage::kAdvertiseKeys);
}

TEST(ServerTest, MaskedInputOfWrongLengthRefused) {
  Federation fed(MakeConfig(kN, 0, 0, 8));
  auto routed = fed.ShareKeys(fed.Advertise());
  auto masked = fed.client(routed[0].recipient).MaskInput(routed[0], fed.Input(routed[0].recipient));
  ASSERT_TRUE(masked.ok());
  masked->masked.pop_back();
  EXPECT_EQ(fed.server->HandleMaskedInput(*masked).code(), absl::StatusCode::kInvalidArgument);
}

// A share altered after decryption (by a client or in transit to the server) is caught: the
// seed no longer matches its signed commitment, or the extra shares disagree.
TEST(ServerTest, TamperedRevealedShareDetected) {
  Federation fed(MakeConfig(kN, 0, 0, 8));
  const auto& s = fed.config.sites;
  fed.Mask(fed.ShareKeys(fed.Advertise()), {s[6]});  // s[6] dropped: its mask key is revealed
  auto request = fed.server->FinishMaskedInput();
  ASSERT_TRUE(request.ok());
  ASSERT_EQ(request->dropped, std::vector<SiteId>{s[6]});
  for (int i = 0; i < 4; ++i) {  // exactly t responses: no redundancy
    UnmaskResponse reply = fed.client(s[i]).Unmask(*request).value();
    if (i == 0) {
      for (RevealedShare& r : reply.shares) r.share.y[1] = (r.share.y[1] + 1) % crypto::kShamirPrime;
    }
    ASSERT_TRUE(fed.server->HandleUnmask(reply).ok());
  }
  auto result = fed.server->FinishUnmask();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDataLoss) << result.status();
  EXPECT_THAT(result.status().message(), HasSubstr("tampered"));
}

TEST(ServerTest, ShareOfTheWrongKindRefused) {
  Federation fed(MakeConfig(kN, 0, 0, 8));
  fed.Mask(fed.ShareKeys(fed.Advertise()));
  auto request = fed.server->FinishMaskedInput();
  ASSERT_TRUE(request.ok());
  UnmaskResponse reply = fed.client(request->survivors[0]).Unmask(*request).value();
  reply.shares[1].kind = ShareKind::kMaskKey;  // asks for a survivor's mask key
  EXPECT_EQ(fed.server->HandleUnmask(reply).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fedattn::secagg
