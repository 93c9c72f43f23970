// A WordPiece tokenizer that reproduces BERT's (Hugging Face BertTokenizer, do_basic_tokenize):
// text cleaning, whitespace and punctuation splitting, CJK characters as single tokens,
// lower-casing and accent stripping for uncased vocabularies, greedy longest-match-first
// WordPiece with "##" continuations and [UNK] for words it cannot cover, then [CLS]/[SEP],
// truncation (longest first) and padding.
//
// Differences from Python, documented rather than hidden: lower-casing and accent stripping
// cover Latin (Basic Latin, Latin-1, Latin Extended-A), Greek and Cyrillic plus every combining
// mark U+0300-U+036F, not all of Unicode; special tokens written inside the text ("[MASK]") are
// split like other text. Immutable after construction, so thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fedattn/models/batch.h"

namespace fedattn::models {

struct WordPieceOptions {
  // Lower-case and strip accents; unset = decide from the vocab (uncased when no token has an
  // upper-case ASCII letter, special tokens aside), as bert-base-uncased vs -cased.
  std::optional<bool> lower_case;
  int64_t max_chars_per_word = 100;  // longer words become [UNK] (BERT's value)
};

struct Encoding {
  std::vector<int64_t> input_ids;
  std::vector<int64_t> token_type_ids;
  std::vector<int64_t> attention_mask;  // 1 real, 0 padding
};

class WordPieceTokenizer {
 public:
  // One token per line, id = line number (0-based), as BERT's vocab.txt. INVALID_ARGUMENT if a
  // required special token ([PAD], [UNK], [CLS], [SEP]) is missing.
  [[nodiscard]] static absl::StatusOr<WordPieceTokenizer> FromVocabFile(const std::filesystem::path& path,
                                                                        WordPieceOptions options = {});
  [[nodiscard]] static absl::StatusOr<WordPieceTokenizer> FromTokens(std::vector<std::string> tokens,
                                                                     WordPieceOptions options = {});

  // Basic tokenization (cleaning, splitting, case and accents).
  std::vector<std::string> BasicTokenize(absl::string_view text) const;
  // Basic tokenization followed by WordPiece.
  std::vector<std::string> Tokenize(absl::string_view text) const;
  std::vector<int64_t> TokensToIds(const std::vector<std::string>& tokens) const;

  // [CLS] text [SEP] (pair [SEP]), truncated to max_length (longest sequence first); padded to
  // max_length when pad is true.
  Encoding Encode(absl::string_view text, absl::string_view pair, int64_t max_length, bool pad) const;

  // Encodes texts into one right-padded batch [N, longest] (input_ids, token_type_ids,
  // attention_mask); labels stay undefined.
  Batch EncodeBatch(const std::vector<std::string>& texts, const std::vector<std::string>& pairs,
                    int64_t max_length) const;

  int64_t vocab_size() const { return static_cast<int64_t>(tokens_.size()); }
  bool lower_case() const { return lower_case_; }
  int64_t pad_id() const { return pad_id_; }
  int64_t unk_id() const { return unk_id_; }
  int64_t cls_id() const { return cls_id_; }
  int64_t sep_id() const { return sep_id_; }

 private:
  WordPieceTokenizer() = default;
  void WordPiece(const std::string& word, std::vector<std::string>* out) const;

  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int64_t> ids_;
  bool lower_case_ = true;
  int64_t max_chars_per_word_ = 100;
  int64_t pad_id_ = 0, unk_id_ = 0, cls_id_ = 0, sep_id_ = 0;
};

}  // namespace fedattn::models
