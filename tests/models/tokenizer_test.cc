#include "fedattn/models/tokenizer.h"

#include <fstream>

#include <torch/torch.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/temp_dir.h"

namespace fedattn::models {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A small BERT-style vocab built here (no downloads): specials first, as in vocab.txt.
std::vector<std::string> UncasedVocab() {
  return {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "patient", "has", "a", "fever", "cafe",
          "naive", "un", "##aff", "##able", "##ed", ",", ".", "!", "(", ")", "-", "x", "##ray", "is",
          "resume", "über", "uber", "##s", "中", "国", "\xCE\xB1"};
}

WordPieceTokenizer Make(std::vector<std::string> vocab = UncasedVocab(), WordPieceOptions options = {}) {
  auto t = WordPieceTokenizer::FromTokens(std::move(vocab), options);
  EXPECT_TRUE(t.ok()) << t.status();
  return *t;
}

TEST(TokenizerTest, DetectsUncasedVocab) {
  EXPECT_TRUE(Make().lower_case());
  std::vector<std::string> cased = UncasedVocab();
  cased.push_back("Patient");
  EXPECT_FALSE(Make(cased).lower_case());
}

TEST(TokenizerTest, LowerCasesAndStripsAccents) {
  const WordPieceTokenizer t = Make();
  EXPECT_THAT(t.BasicTokenize("The CAFÉ naïve Résumé ÜBER"), ElementsAre("the", "cafe", "naive", "resume", "uber"));
  // Combining accents (NFD input) are removed too.
  EXPECT_THAT(t.BasicTokenize("cafe\xCC\x81"), ElementsAre("cafe"));
  EXPECT_THAT(t.BasicTokenize("\xCE\x91"), ElementsAre("\xCE\xB1"));  // Greek capital alpha
}

TEST(TokenizerTest, CasedVocabKeepsCaseAndAccents) {
  const WordPieceTokenizer t = Make(UncasedVocab(), WordPieceOptions{.lower_case = false});
  EXPECT_THAT(t.BasicTokenize("The Café"), ElementsAre("The", "Café"));
}

TEST(TokenizerTest, SplitsPunctuationAndCjk) {
  const WordPieceTokenizer t = Make();
  EXPECT_THAT(t.BasicTokenize("x-ray (fever)!"), ElementsAre("x", "-", "ray", "(", "fever", ")", "!"));
  EXPECT_THAT(t.BasicTokenize("中国a"), ElementsAre("中", "国", "a"));
  EXPECT_THAT(t.BasicTokenize(" \t\n a\x01\xEF\xBF\xBD b "), ElementsAre("a", "b"));  // control, U+FFFD dropped
}

TEST(TokenizerTest, WordPieceLongestMatchAndUnknown) {
  const WordPieceTokenizer t = Make();
  EXPECT_THAT(t.Tokenize("unaffable"), ElementsAre("un", "##aff", "##able"));
  EXPECT_THAT(t.Tokenize("xray fevers"), ElementsAre("x", "##ray", "fever", "##s"));
  // A word that cannot be covered is one [UNK], not a partial match.
  EXPECT_THAT(t.Tokenize("unaffablez patient"), ElementsAre("[UNK]", "patient"));
  EXPECT_THAT(t.Tokenize(std::string(101, 'a')), ElementsAre("[UNK]"));
}

TEST(TokenizerTest, EncodeAddsSpecialsTruncatesAndPads) {
  const WordPieceTokenizer t = Make();
  Encoding e = t.Encode("the patient has a fever.", "", 16, /*pad=*/true);
  EXPECT_THAT(e.input_ids, ElementsAre(2, 5, 6, 7, 8, 9, 17, 3, 0, 0, 0, 0, 0, 0, 0, 0));
  EXPECT_THAT(e.attention_mask, ElementsAre(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0));
  e = t.Encode("the patient has a fever", "", 4, false);
  EXPECT_THAT(e.input_ids, ElementsAre(2, 5, 6, 3));
  // Pairs: longest first, segment ids 0 then 1.
  e = t.Encode("the patient has a fever", "is x", 8, false);
  EXPECT_THAT(e.input_ids, ElementsAre(2, 5, 6, 7, 3, 24, 22, 3));
  EXPECT_THAT(e.token_type_ids, ElementsAre(0, 0, 0, 0, 0, 1, 1, 1));
}

TEST(TokenizerTest, EncodeBatchPadsToLongest) {
  const WordPieceTokenizer t = Make();
  Batch batch = t.EncodeBatch({"fever", "the patient has a fever"}, {}, 32);
  EXPECT_EQ(batch.input_ids.sizes().vec(), (std::vector<int64_t>{2, 7}));
  EXPECT_EQ(batch.attention_mask.sum(1)[0].item<int64_t>(), 3);
  EXPECT_EQ(batch.input_ids[0][3].item<int64_t>(), 0);
}

TEST(TokenizerTest, VocabFileAndMissingSpecials) {
  testing::TempDir dir;
  {
    std::ofstream out(dir / "vocab.txt");
    for (const std::string& token : UncasedVocab()) out << token << "\n";
  }
  auto t = WordPieceTokenizer::FromVocabFile(dir / "vocab.txt");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->vocab_size(), static_cast<int64_t>(UncasedVocab().size()));
  EXPECT_EQ(t->cls_id(), 2);
  auto bad = WordPieceTokenizer::FromTokens({"[PAD]", "[CLS]", "[SEP]", "a"});
  EXPECT_THAT(bad.status().message(), HasSubstr("vocab has no [UNK] token"));
}

}  // namespace
}  // namespace fedattn::models
