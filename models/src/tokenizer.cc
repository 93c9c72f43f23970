#include "fedattn/models/tokenizer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "fedattn/common/files.h"
#include "fedattn/common/status_macros.h"

namespace fedattn::models {
namespace {

// Decodes UTF-8; an invalid byte becomes U+FFFD (which cleaning then drops, as BERT does).
std::vector<char32_t> DecodeUtf8(absl::string_view text) {
  std::vector<char32_t> out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const auto b = static_cast<uint8_t>(text[i]);
    int length = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
    if (length == 0 || i + length > text.size()) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    char32_t cp = length == 1 ? b : b & (0x7F >> length);
    bool valid = true;
    for (int k = 1; k < length; ++k) {
      const auto c = static_cast<uint8_t>(text[i + k]);
      if ((c >> 6) != 0x2) valid = false;
      cp = (cp << 6) | (c & 0x3F);
    }
    if (!valid) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += length;
  }
  return out;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    *out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    *out += static_cast<char>(0xC0 | (cp >> 6));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *out += static_cast<char>(0xE0 | (cp >> 12));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    *out += static_cast<char>(0xF0 | (cp >> 18));
    *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool IsWhitespace(char32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool IsControl(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  return c < 0x20 || (c >= 0x7F && c <= 0x9F) || c == 0xAD || (c >= 0x200B && c <= 0x200F) ||
         (c >= 0x2060 && c <= 0x2064) || c == 0xFEFF;
}

bool IsPunctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
  return c == 0xA1 || c == 0xA7 || c == 0xAB || c == 0xB6 || c == 0xB7 || c == 0xBB || c == 0xBF ||
         (c >= 0x2010 && c <= 0x2027) || (c >= 0x2030 && c <= 0x205E) || (c >= 0x3001 && c <= 0x3003) ||
         (c >= 0x3008 && c <= 0x3011) || (c >= 0xFF01 && c <= 0xFF0F);
}

bool IsChinese(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2CEAF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

char32_t ToLower(char32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 0x20;
  if (c == 0x130) return 'i';  // İ lower-cases to i + U+0307, whose mark is then stripped
  if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) return (c % 2 == 0) ? c + 1 : c;
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c % 2 == 1) ? c + 1 : c;
  if (c == 0x178) return 0xFF;
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 0x20;
  if (c >= 0x410 && c <= 0x42F) return c + 0x20;
  if (c >= 0x400 && c <= 0x40F) return c + 0x50;
  return c;
}

// Base letter of a precomposed Latin letter (its NFD without combining marks), or 0 if it has none.
char32_t StripAccent(char32_t c) {
  static constexpr char kLatin1[] =  // U+00C0..U+00FF
      "AAAAAA\0CEEEEIIII\0NOOOOO\0\0UUUUY\0\0aaaaaa\0ceeeeiiii\0nooooo\0\0uuuuy\0y";
  static constexpr char kExtendedA[] =  // U+0100..U+017F
      "AaAaAaCcCcCcCcDd\0\0EeEeEeEeEeGgGgGgGgHh\0\0IiIiIiIiI\0\0\0JjKk\0LlLlLl\0\0\0\0NnNnNn\0\0\0OoOoOo\0\0RrRrRrSsSsSsSsTtTt\0\0UuUuUuUuUuUuWwYyYZzZzZz\0";
  if (c >= 0xC0 && c <= 0xFF) return static_cast<unsigned char>(kLatin1[c - 0xC0]);
  if (c >= 0x100 && c <= 0x17F) return static_cast<unsigned char>(kExtendedA[c - 0x100]);
  return 0;
}

bool IsCombiningMark(char32_t c) { return (c >= 0x300 && c <= 0x36F); }

bool HasUpperAscii(const std::string& token) {
  return std::any_of(token.begin(), token.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

bool IsSpecial(const std::string& token) {
  return token.size() >= 3 && token.front() == '[' && token.back() == ']';
}

}  // namespace

absl::StatusOr<WordPieceTokenizer> WordPieceTokenizer::FromVocabFile(const std::filesystem::path& path,
                                                                     WordPieceOptions options) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::vector<std::string> tokens;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    tokens.emplace_back(line);
  }
  while (!tokens.empty() && tokens.back().empty()) tokens.pop_back();  // trailing newline
  auto tokenizer = FromTokens(std::move(tokens), options);
  if (!tokenizer.ok()) {
    return absl::Status(tokenizer.status().code(), absl::StrCat(path.string(), ": ", tokenizer.status().message()));
  }
  return tokenizer;
}

absl::StatusOr<WordPieceTokenizer> WordPieceTokenizer::FromTokens(std::vector<std::string> tokens,
                                                                  WordPieceOptions options) {
  WordPieceTokenizer t;
  t.tokens_ = std::move(tokens);
  bool cased = false;
  for (size_t i = 0; i < t.tokens_.size(); ++i) {
    t.ids_.emplace(t.tokens_[i], static_cast<int64_t>(i));  // first occurrence wins, as in BERT
    if (!IsSpecial(t.tokens_[i]) && HasUpperAscii(t.tokens_[i])) cased = true;
  }
  auto find = [&](const char* name, int64_t* id) -> absl::Status {
    auto it = t.ids_.find(name);
    if (it == t.ids_.end()) return absl::InvalidArgumentError(absl::StrCat("vocab has no ", name, " token"));
    *id = it->second;
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(find("[PAD]", &t.pad_id_));
  RETURN_IF_ERROR(find("[UNK]", &t.unk_id_));
  RETURN_IF_ERROR(find("[CLS]", &t.cls_id_));
  RETURN_IF_ERROR(find("[SEP]", &t.sep_id_));
  t.lower_case_ = options.lower_case.value_or(!cased);
  t.max_chars_per_word_ = options.max_chars_per_word;
  return t;
}

std::vector<std::string> WordPieceTokenizer::BasicTokenize(absl::string_view text) const {
  std::vector<std::string> words;
  std::vector<char32_t> word;
  auto flush = [&] {
    if (word.empty()) return;
    std::string out;
    for (char32_t c : word) AppendUtf8(c, &out);
    words.push_back(std::move(out));
    word.clear();
  };
  for (char32_t c : DecodeUtf8(text)) {
    if (c == 0 || c == 0xFFFD || IsControl(c)) continue;
    if (IsWhitespace(c)) {
      flush();
      continue;
    }
    if (lower_case_) {
      c = ToLower(c);
      if (IsCombiningMark(c)) continue;
      if (char32_t base = StripAccent(c); base != 0) c = base;
    }
    if (IsPunctuation(c) || IsChinese(c)) {
      flush();
      word.push_back(c);
      flush();
      continue;
    }
    word.push_back(c);
  }
  flush();
  return words;
}

void WordPieceTokenizer::WordPiece(const std::string& word, std::vector<std::string>* out) const {
  const std::vector<char32_t> chars = DecodeUtf8(word);
  if (static_cast<int64_t>(chars.size()) > max_chars_per_word_) {
    out->push_back(tokens_[unk_id_]);
    return;
  }
  std::vector<std::string> pieces;
  size_t start = 0;
  while (start < chars.size()) {
    size_t end = chars.size();
    std::string found;
    while (start < end) {
      std::string piece = start > 0 ? "##" : "";
      for (size_t i = start; i < end; ++i) AppendUtf8(chars[i], &piece);
      if (ids_.count(piece)) {
        found = std::move(piece);
        break;
      }
      --end;
    }
    if (found.empty()) {
      out->push_back(tokens_[unk_id_]);
      return;
    }
    pieces.push_back(std::move(found));
    start = end;
  }
  out->insert(out->end(), pieces.begin(), pieces.end());
}

std::vector<std::string> WordPieceTokenizer::Tokenize(absl::string_view text) const {
  std::vector<std::string> out;
  for (const std::string& word : BasicTokenize(text)) WordPiece(word, &out);
  return out;
}

std::vector<int64_t> WordPieceTokenizer::TokensToIds(const std::vector<std::string>& tokens) const {
  std::vector<int64_t> ids;
  ids.reserve(tokens.size());
  for (const std::string& token : tokens) {
    auto it = ids_.find(token);
    ids.push_back(it == ids_.end() ? unk_id_ : it->second);
  }
  return ids;
}

Encoding WordPieceTokenizer::Encode(absl::string_view text, absl::string_view pair, int64_t max_length,
                                    bool pad) const {
  std::vector<int64_t> a = TokensToIds(Tokenize(text));
  std::vector<int64_t> b;
  const bool has_pair = !pair.empty();
  if (has_pair) b = TokensToIds(Tokenize(pair));
  const int64_t budget = std::max<int64_t>(0, max_length - (has_pair ? 3 : 2));
  while (static_cast<int64_t>(a.size() + b.size()) > budget) {
    if (a.size() > b.size()) {
      a.pop_back();
    } else {
      b.pop_back();
    }
  }
  Encoding e;
  e.input_ids.push_back(cls_id_);
  e.input_ids.insert(e.input_ids.end(), a.begin(), a.end());
  e.input_ids.push_back(sep_id_);
  e.token_type_ids.assign(e.input_ids.size(), 0);
  if (has_pair) {
    e.input_ids.insert(e.input_ids.end(), b.begin(), b.end());
    e.input_ids.push_back(sep_id_);
    e.token_type_ids.resize(e.input_ids.size(), 1);
  }
  e.attention_mask.assign(e.input_ids.size(), 1);
  if (pad && static_cast<int64_t>(e.input_ids.size()) < max_length) {
    e.input_ids.resize(max_length, pad_id_);
    e.token_type_ids.resize(max_length, 0);
    e.attention_mask.resize(max_length, 0);
  }
  return e;
}

Batch WordPieceTokenizer::EncodeBatch(const std::vector<std::string>& texts, const std::vector<std::string>& pairs,
                                      int64_t max_length) const {
  std::vector<Encoding> encodings;
  size_t longest = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    encodings.push_back(Encode(texts[i], i < pairs.size() ? pairs[i] : "", max_length, /*pad=*/false));
    longest = std::max(longest, encodings.back().input_ids.size());
  }
  const auto n = static_cast<int64_t>(texts.size());
  Batch batch;
  batch.input_ids = torch::full({n, static_cast<int64_t>(longest)}, pad_id_, torch::kInt64);
  batch.token_type_ids = torch::zeros({n, static_cast<int64_t>(longest)}, torch::kInt64);
  batch.attention_mask = torch::zeros({n, static_cast<int64_t>(longest)}, torch::kInt64);
  for (int64_t i = 0; i < n; ++i) {
    const Encoding& e = encodings[i];
    const auto length = static_cast<int64_t>(e.input_ids.size());
    std::copy(e.input_ids.begin(), e.input_ids.end(), batch.input_ids.data_ptr<int64_t>() + i * longest);
    std::copy(e.token_type_ids.begin(), e.token_type_ids.end(), batch.token_type_ids.data_ptr<int64_t>() + i * longest);
    std::fill_n(batch.attention_mask.data_ptr<int64_t>() + i * longest, length, 1);
  }
  return batch;
}

}  // namespace fedattn::models
