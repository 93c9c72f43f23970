#include "fedattn/secagg/masking.h"

#include <gtest/gtest.h>

#include "fedattn/crypto/prg.h"

namespace fedattn::secagg {
namespace {

crypto::Key16 KeyOf(uint8_t b) {
  crypto::Key16 key;
  key.data()[0] = b;
  key.data()[15] = static_cast<uint8_t>(b * 3);
  return key;
}

// The mask written out the slow way: keystream bytes read as little-endian words.
std::vector<uint32_t> Keystream(const crypto::Key16& key, size_t words) {
  auto prg = crypto::Aes128CtrPrg::Create(key.span());
  EXPECT_TRUE(prg.ok());
  std::vector<uint8_t> bytes(words * 4);
  EXPECT_TRUE(prg->Fill(bytes).ok());
  std::vector<uint32_t> out(words);
  for (size_t i = 0; i < words; ++i) {
    out[i] = bytes[4 * i] | bytes[4 * i + 1] << 8 | bytes[4 * i + 2] << 16 |
             static_cast<uint32_t>(bytes[4 * i + 3]) << 24;
  }
  return out;
}

class ApplyMasksTest : public ::testing::TestWithParam<size_t> {};

TEST_P(ApplyMasksTest, MatchesElementWiseReference) {
  const size_t d = GetParam();
  std::vector<uint32_t> words(d), expected(d);
  for (size_t i = 0; i < d; ++i) words[i] = expected[i] = static_cast<uint32_t>(i * 2654435761u);
  std::vector<MaskStream> streams;
  streams.push_back(MaskStream{KeyOf(1), false});
  streams.push_back(MaskStream{KeyOf(2), true});
  streams.push_back(MaskStream{KeyOf(3), false});
  for (const MaskStream& s : streams) {
    const std::vector<uint32_t> k = Keystream(s.key, d);
    for (size_t i = 0; i < d; ++i) expected[i] = s.subtract ? expected[i] - k[i] : expected[i] + k[i];
  }
  ASSERT_TRUE(ApplyMasks(streams, words).ok());
  EXPECT_EQ(words, expected);
}

INSTANTIATE_TEST_SUITE_P(Lengths, ApplyMasksTest,
                         ::testing::Values(1, 3, 16, 17, 1000, 16384, 16384 * 2 + 5, 100003));

TEST(MaskingTest, PairwiseMasksCancel) {
  // u < v: u adds PRG(s_uv), v subtracts it.
  crypto::Key32 shared;
  shared.data()[3] = 7;
  auto key_uv = PairwiseMaskKey(shared, "job", 1, 4, 9);
  auto key_vu = PairwiseMaskKey(shared, "job", 1, 9, 4);
  ASSERT_TRUE(key_uv.ok() && key_vu.ok());
  EXPECT_TRUE(std::equal(key_uv->span().begin(), key_uv->span().end(), key_vu->span().begin()));
  std::vector<uint32_t> xu(777, 5), xv(777, 11);
  const MaskStream su{*key_uv, !AddsPairwiseMask(4, 9)};
  const MaskStream sv{*key_vu, !AddsPairwiseMask(9, 4)};
  ASSERT_TRUE(ApplyMasks(std::span(&su, 1), xu).ok());
  ASSERT_TRUE(ApplyMasks(std::span(&sv, 1), xv).ok());
  EXPECT_NE(xu, std::vector<uint32_t>(777, 5));
  AddWords(xu, xv);
  EXPECT_EQ(xu, std::vector<uint32_t>(777, 16));
}

TEST(MaskingTest, KeysAreBoundToJobRoundAndSites) {
  crypto::Key32 secret;
  secret.data()[0] = 1;
  auto base = PairwiseMaskKey(secret, "job", 1, 4, 9);
  auto other_job = PairwiseMaskKey(secret, "job2", 1, 4, 9);
  auto other_round = PairwiseMaskKey(secret, "job", 2, 4, 9);
  auto other_pair = PairwiseMaskKey(secret, "job", 1, 4, 10);
  auto self = SelfMaskKey(secret, "job", 1, 4);
  ASSERT_TRUE(base.ok() && other_job.ok() && other_round.ok() && other_pair.ok() && self.ok());
  auto same = [](const crypto::Key16& a, const crypto::Key16& b) {
    return std::equal(a.span().begin(), a.span().end(), b.span().begin());
  };
  EXPECT_FALSE(same(*base, *other_job));
  EXPECT_FALSE(same(*base, *other_round));
  EXPECT_FALSE(same(*base, *other_pair));
  EXPECT_FALSE(same(*base, *self));
}

TEST(MaskingTest, AddWordsWraps) {
  std::vector<uint32_t> a = {0xffffffffu, 1, 2}, b = {2, 0xffffffffu, 3};
  AddWords(a, b);
  EXPECT_EQ(a, (std::vector<uint32_t>{1, 0, 5}));
}

}  // namespace
}  // namespace fedattn::secagg
