#include "fedattn/rpc/secagg_wire.h"

#include <functional>
#include <map>
#include <set>

#include "common/secagg/federation_fixture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedattn::rpc {
namespace {

using secagg::SiteId;
using secagg::testing::Federation;
using secagg::testing::MakeConfig;
using ::testing::HasSubstr;

constexpr char kJob[] = "job-secagg-test";  // MakeConfig's job id
constexpr uint64_t kRound = 3;              // and round

// Through real protobuf bytes, as gRPC would carry it.
template <typename Proto>
Proto OverTheWire(const Proto& message) {
  Proto parsed;
  EXPECT_TRUE(parsed.ParseFromString(message.SerializeAsString()));
  return parsed;
}

template <typename Struct>
Struct Convert(const Struct& message) {
  auto back = FromProto(OverTheWire(ToProto(message)), kJob, kRound);
  EXPECT_TRUE(back.ok()) << back.status();
  return back.ok() ? *back : Struct{};
}

void ExpectEqual(const secagg::KeyAdvertisement& a, const secagg::KeyAdvertisement& b) {
  EXPECT_EQ(a.job_id, b.job_id);
  EXPECT_EQ(a.round, b.round);
  EXPECT_EQ(a.sender, b.sender);
  EXPECT_EQ(a.encryption_key, b.encryption_key);
  EXPECT_EQ(a.mask_key, b.mask_key);
  EXPECT_EQ(a.self_mask_commitment, b.self_mask_commitment);
  EXPECT_EQ(a.signature, b.signature);
}

void ExpectEqual(const std::vector<secagg::EncryptedShare>& a, const std::vector<secagg::EncryptedShare>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].sender, b[i].sender);
    EXPECT_EQ(a[i].recipient, b[i].recipient);
    EXPECT_EQ(a[i].ciphertext, b[i].ciphertext);
  }
}

// Runs a SecAgg+ round of 7 sites (k = 4, t = 3) where every message between the clients and
// the server goes ToProto → bytes → FromProto; one site drops after sharing its keys, so the
// unmask stage reveals both kinds of share. Checks each conversion field by field and that the
// server still produces the exact sum.
TEST(SecAggWireTest, RealRoundSurvivesTheWire) {
  Federation fed(MakeConfig(7, 4, 3, 64), /*seed=*/11);
  const SiteId dropped = fed.config.sites[2];

  for (auto& [site, client] : fed.clients) {
    auto advertisement = client->AdvertiseKeys();
    ASSERT_TRUE(advertisement.ok()) << advertisement.status();
    const secagg::KeyAdvertisement converted = Convert(*advertisement);
    ExpectEqual(converted, *advertisement);
    ASSERT_TRUE(fed.server->HandleAdvertisement(converted).ok());
  }
  auto keys = fed.server->FinishAdvertise();
  ASSERT_TRUE(keys.ok()) << keys.status();

  for (const secagg::NeighbourKeys& message : *keys) {
    const secagg::NeighbourKeys converted = Convert(message);
    EXPECT_EQ(converted.job_id, kJob);
    EXPECT_EQ(converted.round, kRound);
    EXPECT_EQ(converted.recipient, message.recipient);
    EXPECT_EQ(converted.participants, message.participants);
    ASSERT_EQ(converted.neighbours.size(), message.neighbours.size());
    for (size_t i = 0; i < message.neighbours.size(); ++i) ExpectEqual(converted.neighbours[i], message.neighbours[i]);
    auto reply = fed.client(message.recipient).ShareKeys(converted);
    ASSERT_TRUE(reply.ok()) << reply.status();
    const secagg::ShareKeysMessage reply_converted = Convert(*reply);
    EXPECT_EQ(reply_converted.sender, reply->sender);
    ExpectEqual(reply_converted.shares, reply->shares);
    ASSERT_TRUE(fed.server->HandleShareKeys(reply_converted).ok());
  }
  auto routed = fed.server->FinishShareKeys();
  ASSERT_TRUE(routed.ok()) << routed.status();

  for (const secagg::SharesForSite& message : *routed) {
    const secagg::SharesForSite converted = Convert(message);
    EXPECT_EQ(converted.recipient, message.recipient);
    ExpectEqual(converted.shares, message.shares);
    if (message.recipient == dropped) continue;
    auto masked = fed.client(message.recipient).MaskInput(converted, fed.Input(message.recipient));
    ASSERT_TRUE(masked.ok()) << masked.status();
    ASSERT_TRUE(fed.server->HandleMaskedInput(*masked).ok());
  }
  auto request = fed.server->FinishMaskedInput();
  ASSERT_TRUE(request.ok()) << request.status();
  ASSERT_EQ(request->dropped, std::vector<SiteId>{dropped});
  const secagg::UnmaskRequest request_converted = Convert(*request);
  EXPECT_EQ(request_converted.survivors, request->survivors);
  EXPECT_EQ(request_converted.dropped, request->dropped);

  std::set<secagg::ShareKind> kinds;
  for (SiteId site : request_converted.survivors) {
    auto reply = fed.client(site).Unmask(request_converted);
    ASSERT_TRUE(reply.ok()) << reply.status();
    const secagg::UnmaskResponse converted = Convert(*reply);
    EXPECT_EQ(converted.sender, reply->sender);
    ASSERT_EQ(converted.shares.size(), reply->shares.size());
    for (size_t i = 0; i < reply->shares.size(); ++i) {
      EXPECT_EQ(converted.shares[i].owner, reply->shares[i].owner);
      EXPECT_EQ(converted.shares[i].kind, reply->shares[i].kind);
      EXPECT_EQ(converted.shares[i].share.x, reply->shares[i].share.x);
      EXPECT_EQ(converted.shares[i].share.y, reply->shares[i].share.y);
      kinds.insert(reply->shares[i].kind);
    }
    ASSERT_TRUE(fed.server->HandleUnmask(converted).ok());
  }
  EXPECT_EQ(kinds.size(), 2u);  // both kinds crossed the wire

  auto result = fed.server->FinishUnmask();
  ASSERT_TRUE(result.ok()) << result.status();
  std::vector<uint32_t> expected(fed.config.vector_length, 0);
  for (SiteId site : fed.config.sites) {
    if (site == dropped) continue;
    const auto x = fed.Input(site);
    for (size_t i = 0; i < x.size(); ++i) expected[i] += x[i];
  }
  EXPECT_EQ(result->sum, expected);
}

TEST(SecAggWireTest, JobAndRoundComeFromTheCaller) {
  Federation fed(MakeConfig(3, 0, 0, 4));
  auto advertisement = fed.clients.begin()->second->AdvertiseKeys();
  ASSERT_TRUE(advertisement.ok());
  auto converted = FromProto(ToProto(*advertisement), "another-job", 9);
  ASSERT_TRUE(converted.ok());
  EXPECT_EQ(converted->job_id, "another-job");
  EXPECT_EQ(converted->round, 9u);
  // The state machines bind job and round (the signature covers them), so a restamped
  // advertisement is refused by the server, not silently accepted.
  EXPECT_FALSE(fed.server->HandleAdvertisement(*converted).ok());
}

TEST(SecAggWireTest, EmptyMessagesConvert) {
  EXPECT_TRUE(FromProto(v1::SecAggNeighbourKeys(), kJob, kRound).ok());
  EXPECT_TRUE(FromProto(v1::SecAggShareKeys(), kJob, kRound).ok());
  EXPECT_TRUE(FromProto(v1::SecAggSharesForSite(), kJob, kRound).ok());
  EXPECT_TRUE(FromProto(v1::SecAggUnmaskRequest(), kJob, kRound).ok());
  EXPECT_TRUE(FromProto(v1::SecAggUnmaskResponse(), kJob, kRound).ok());
  // An advertisement has fixed-size fields, so an empty one is refused.
  EXPECT_EQ(FromProto(v1::SecAggKeyAdvertisement(), kJob, kRound).status().code(), absl::StatusCode::kInvalidArgument);
}

// Hand-made valid protos; each refusal case breaks one field of one of them.
v1::SecAggKeyAdvertisement ValidAdvertisement() {
  v1::SecAggKeyAdvertisement message;
  message.set_sender(7);
  message.set_encryption_key(std::string(32, '\x01'));
  message.set_mask_key(std::string(32, '\x02'));
  message.set_self_mask_commitment(std::string(32, '\x03'));
  message.set_signature(std::string(64, '\x04'));
  return message;
}

v1::SecAggEncryptedShare ValidShare() {
  v1::SecAggEncryptedShare share;
  share.set_sender(1);
  share.set_recipient(2);
  share.set_ciphertext(std::string(kEncryptedShareBytes, '\x05'));
  return share;
}

v1::SecAggRevealedShare ValidRevealed() {
  v1::SecAggRevealedShare share;
  share.set_owner(3);
  share.set_kind(1);
  share.set_x(4);
  share.set_y(std::string(kShamirValueBytes, '\x06'));
  return share;
}

struct RefusalCase {
  std::string name;
  std::function<absl::Status()> convert;
  std::string expected;  // the message names the field
};

std::vector<RefusalCase> RefusalCases() {
  auto advertisement = [](std::function<void(v1::SecAggKeyAdvertisement*)> mutate) {
    return [mutate] {
      v1::SecAggKeyAdvertisement message = ValidAdvertisement();
      mutate(&message);
      return FromProto(message, kJob, kRound).status();
    };
  };
  auto neighbour = [](std::function<void(v1::SecAggKeyAdvertisement*)> mutate) {
    return [mutate] {
      v1::SecAggNeighbourKeys message;
      *message.add_neighbours() = ValidAdvertisement();
      *message.add_neighbours() = ValidAdvertisement();
      mutate(message.mutable_neighbours(1));
      return FromProto(message, kJob, kRound).status();
    };
  };
  auto share_keys = [](std::function<void(v1::SecAggEncryptedShare*)> mutate) {
    return [mutate] {
      v1::SecAggShareKeys message;
      *message.add_shares() = ValidShare();
      mutate(message.mutable_shares(0));
      return FromProto(message, kJob, kRound).status();
    };
  };
  auto shares_for_site = [](std::function<void(v1::SecAggEncryptedShare*)> mutate) {
    return [mutate] {
      v1::SecAggSharesForSite message;
      *message.add_shares() = ValidShare();
      *message.add_shares() = ValidShare();
      *message.add_shares() = ValidShare();
      mutate(message.mutable_shares(2));
      return FromProto(message, kJob, kRound).status();
    };
  };
  auto revealed = [](std::function<void(v1::SecAggRevealedShare*)> mutate) {
    return [mutate] {
      v1::SecAggUnmaskResponse message;
      *message.add_shares() = ValidRevealed();
      *message.add_shares() = ValidRevealed();
      mutate(message.mutable_shares(1));
      return FromProto(message, kJob, kRound).status();
    };
  };
  auto word = [](size_t chunk, uint64_t value) {
    return [chunk, value](v1::SecAggRevealedShare* share) {
      std::string y = share->y();
      for (size_t b = 0; b < 8; ++b) y[8 * chunk + b] = static_cast<char>(value >> (8 * b));
      share->set_y(y);
    };
  };
  return {
      {"short encryption key", advertisement([](auto* m) { m->set_encryption_key(std::string(31, 'k')); }),
       "SecAggKeyAdvertisement.encryption_key: expected 32 bytes, got 31"},
      {"long mask key", advertisement([](auto* m) { m->set_mask_key(std::string(33, 'k')); }),
       "SecAggKeyAdvertisement.mask_key: expected 32 bytes, got 33"},
      {"missing commitment", advertisement([](auto* m) { m->clear_self_mask_commitment(); }),
       "SecAggKeyAdvertisement.self_mask_commitment: expected 32 bytes, got 0"},
      {"short signature", advertisement([](auto* m) { m->set_signature(std::string(63, 's')); }),
       "SecAggKeyAdvertisement.signature: expected 64 bytes, got 63"},
      {"neighbour's mask key", neighbour([](auto* m) { m->set_mask_key(std::string(31, 'k')); }),
       "SecAggNeighbourKeys.neighbours[1].mask_key: expected 32 bytes, got 31"},
      {"neighbour's signature", neighbour([](auto* m) { m->set_signature(""); }),
       "SecAggNeighbourKeys.neighbours[1].signature: expected 64 bytes, got 0"},
      {"truncated ciphertext", share_keys([](auto* m) { m->set_ciphertext(std::string(103, 'c')); }),
       "SecAggShareKeys.shares[0].ciphertext: expected 104 bytes, got 103"},
      {"routed ciphertext", shares_for_site([](auto* m) { m->set_ciphertext(std::string(105, 'c')); }),
       "SecAggSharesForSite.shares[2].ciphertext: expected 104 bytes, got 105"},
      {"kind 0", revealed([](auto* m) { m->set_kind(0); }),
       "SecAggUnmaskResponse.shares[1].kind: expected 1 (self-mask seed) or 2 (mask key), got 0"},
      {"kind 3", revealed([](auto* m) { m->set_kind(3); }), "SecAggUnmaskResponse.shares[1].kind:"},
      {"point 0", revealed([](auto* m) { m->set_x(0); }),
       "SecAggUnmaskResponse.shares[1].x: a Shamir point is never 0"},
      {"short y", revealed([](auto* m) { m->set_y(std::string(39, 'y')); }),
       "SecAggUnmaskResponse.shares[1].y: expected 40 bytes, got 39"},
      {"long y", revealed([](auto* m) { m->set_y(std::string(44, 'y')); }),
       "SecAggUnmaskResponse.shares[1].y: expected 40 bytes, got 44"},
      {"y equal to the prime", revealed(word(0, crypto::kShamirPrime)),
       "SecAggUnmaskResponse.shares[1].y: word 0 is outside the field"},
      {"y above the prime", revealed(word(4, ~uint64_t{0})),
       "SecAggUnmaskResponse.shares[1].y: word 4 is outside the field"},
  };
}

TEST(SecAggWireTest, RefusesEachMalformedField) {
  for (const RefusalCase& c : RefusalCases()) {
    SCOPED_TRACE(c.name);
    const absl::Status status = c.convert();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.expected));
  }
}

TEST(SecAggWireTest, ValidHandMadeFieldsPass) {
  // The cases above break a message that is otherwise accepted, so each refusal is due to its field.
  EXPECT_TRUE(FromProto(ValidAdvertisement(), kJob, kRound).ok());
  v1::SecAggShareKeys share_keys;
  *share_keys.add_shares() = ValidShare();
  EXPECT_TRUE(FromProto(share_keys, kJob, kRound).ok());
  v1::SecAggUnmaskResponse unmask;
  *unmask.add_shares() = ValidRevealed();
  v1::SecAggRevealedShare* largest = unmask.add_shares();
  *largest = ValidRevealed();
  largest->set_kind(2);
  std::string y(kShamirValueBytes, '\0');
  for (size_t c = 0; c < crypto::kShamirChunks; ++c) {
    for (size_t b = 0; b < 8; ++b) y[8 * c + b] = static_cast<char>((crypto::kShamirPrime - 1) >> (8 * b));
  }
  largest->set_y(y);
  auto converted = FromProto(unmask, kJob, kRound);
  ASSERT_TRUE(converted.ok()) << converted.status();
  EXPECT_EQ(converted->shares[1].kind, secagg::ShareKind::kMaskKey);
  EXPECT_EQ(converted->shares[1].share.y[4], crypto::kShamirPrime - 1);
}

}  // namespace
}  // namespace fedattn::rpc
