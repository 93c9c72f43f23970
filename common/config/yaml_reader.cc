#include "fedattn/config/yaml_reader.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fedattn/common/files.h"
#include "fedattn/common/status_macros.h"

namespace fedattn::config {

struct YamlDocument::Errors {
  std::string source;
  std::vector<std::string> messages;

  void Add(int line, absl::string_view key_path, absl::string_view message) {
    const std::string where = line > 0 ? absl::StrCat(source, ":", line) : source;
    messages.push_back(key_path.empty() ? absl::StrCat(where, ": ", message)
                                        : absl::StrCat(where, ": ", key_path, ": ", message));
  }
};

namespace {

// yaml-cpp marks are 0-based; -1 for nodes that did not come from text.
int LineFromMark(const YAML::Mark& mark) { return mark.line >= 0 ? mark.line + 1 : 0; }

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar: return absl::StrCat("'", node.Scalar(), "'");
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Null: return "nothing";
    default: return "an undefined value";
  }
}

}  // namespace

YamlDocument::YamlDocument(YAML::Node root, std::string source, std::filesystem::path directory)
    : root_(std::move(root)), directory_(std::move(directory)), errors_(std::make_shared<Errors>()) {
  errors_->source = std::move(source);
}

absl::StatusOr<YamlDocument> YamlDocument::Load(const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  ASSIGN_OR_RETURN(YamlDocument doc, Parse(text, path.string()));
  doc.directory_ = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  return doc;
}

absl::StatusOr<YamlDocument> YamlDocument::Parse(absl::string_view text, std::string source_name) {
  try {
    YAML::Node root = YAML::Load(std::string(text));
    return YamlDocument(std::move(root), std::move(source_name), ".");
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_name, ":", LineFromMark(e.mark), ": not valid YAML: ", e.msg));
  }
}

MapReader YamlDocument::Root() {
  if (!root_.IsMap()) {
    errors_->Add(LineFromMark(root_.Mark()), "", absl::StrCat("expected a mapping at the top, got ", Describe(root_)));
    return MapReader(YAML::Node(YAML::NodeType::Map), "", 0, errors_, directory_);
  }
  return MapReader(root_, "", LineFromMark(root_.Mark()), errors_, directory_);
}

void YamlDocument::AddError(int line, absl::string_view key_path, absl::string_view message) {
  errors_->Add(line, key_path, message);
}

absl::Status YamlDocument::Finish() const {
  if (errors_->messages.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors_->messages, "\n"));
}

MapReader::MapReader(YAML::Node node, std::string path, int line,
                     std::shared_ptr<YamlDocument::Errors> errors, std::filesystem::path directory)
    : node_(std::move(node)),
      path_(std::move(path)),
      line_(line),
      errors_(std::move(errors)),
      directory_(std::move(directory)) {}

MapReader::MapReader(MapReader&& other) noexcept
    : node_(std::move(other.node_)),
      path_(std::move(other.path_)),
      line_(other.line_),
      errors_(std::move(other.errors_)),
      directory_(std::move(other.directory_)),
      read_keys_(std::move(other.read_keys_)),
      active_(other.active_) {
  other.active_ = false;
}

MapReader::~MapReader() {
  if (!active_ || !node_.IsMap()) return;
  for (const auto& entry : node_) {
    const std::string key = entry.first.as<std::string>("");
    if (std::find(read_keys_.begin(), read_keys_.end(), key) == read_keys_.end()) {
      errors_->Add(LineFromMark(entry.first.Mark()), KeyPath(key), "unknown key");
    }
  }
}

std::string MapReader::KeyPath(absl::string_view key) const {
  if (path_.empty()) return std::string(key);
  if (key.empty()) return path_;
  return absl::StrCat(path_, ".", key);
}

int MapReader::LineOf(const YAML::Node& node) const {
  const int line = LineFromMark(node.Mark());
  return line > 0 ? line : line_;
}

bool MapReader::Has(absl::string_view key) const {
  return node_.IsMap() && node_[std::string(key)].IsDefined();
}

YAML::Node MapReader::Take(absl::string_view key) {
  read_keys_.emplace_back(key);
  if (!node_.IsMap()) return YAML::Node();
  const YAML::Node& const_node = node_;  // const lookup does not insert the key
  return const_node[std::string(key)];
}

void MapReader::Error(absl::string_view key, absl::string_view message) {
  int line = line_;
  if (!key.empty() && node_.IsMap()) {
    const YAML::Node& const_node = node_;
    const YAML::Node child = const_node[std::string(key)];
    if (child.IsDefined()) line = LineOf(child);
  }
  errors_->Add(line, KeyPath(key), message);
}

bool MapReader::TakeScalar(absl::string_view key, bool required, std::string* out) {
  const YAML::Node child = Take(key);
  if (!child.IsDefined() || child.IsNull()) {
    if (required) errors_->Add(line_, KeyPath(key), "required key is missing");
    return false;
  }
  if (!child.IsScalar()) {
    errors_->Add(LineOf(child), KeyPath(key), absl::StrCat("expected a single value, got ", Describe(child)));
    return false;
  }
  *out = child.Scalar();
  return true;
}

void MapReader::Required(absl::string_view key, std::string* out) {
  std::string value;
  if (!TakeScalar(key, true, &value)) return;
  if (value.empty()) {
    Error(key, "must not be empty");
    return;
  }
  *out = std::move(value);
}

void MapReader::Optional(absl::string_view key, std::string* out) {
  std::string value;
  if (TakeScalar(key, false, &value)) *out = std::move(value);
}

namespace {

bool ParseInt(const std::string& text, int64_t* out) {
  try {
    size_t used = 0;
    const long long value = std::stoll(text, &used, 10);
    if (used != text.size()) return false;
    *out = value;
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

bool ParseDouble(const std::string& text, double* out) {
  try {
    size_t used = 0;
    const double value = std::stod(text, &used);
    if (used != text.size() || !std::isfinite(value)) return false;
    *out = value;
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

void MapReader::Required(absl::string_view key, int64_t* out, int64_t min, int64_t max) {
  std::string text;
  if (!TakeScalar(key, true, &text)) return;
  int64_t value = 0;
  if (!ParseInt(text, &value)) {
    Error(key, absl::StrCat("expected an integer, got '", text, "'"));
  } else if (value < min || value > max) {
    Error(key, absl::StrCat("must be between ", min, " and ", max, ", got ", value));
  } else {
    *out = value;
  }
}

void MapReader::Optional(absl::string_view key, int64_t* out, int64_t min, int64_t max) {
  if (Has(key)) {
    Required(key, out, min, max);
  } else {
    read_keys_.emplace_back(key);
  }
}

void MapReader::Required(absl::string_view key, double* out, double min, double max) {
  std::string text;
  if (!TakeScalar(key, true, &text)) return;
  double value = 0;
  if (!ParseDouble(text, &value)) {
    Error(key, absl::StrCat("expected a number, got '", text, "'"));
  } else if (value < min || value > max) {
    Error(key, absl::StrCat("must be between ", min, " and ", max, ", got ", text));
  } else {
    *out = value;
  }
}

void MapReader::Optional(absl::string_view key, double* out, double min, double max) {
  if (Has(key)) {
    Required(key, out, min, max);
  } else {
    read_keys_.emplace_back(key);
  }
}

void MapReader::Optional(absl::string_view key, bool* out) {
  std::string text;
  if (!TakeScalar(key, false, &text)) return;
  if (text == "true") {
    *out = true;
  } else if (text == "false") {
    *out = false;
  } else {
    Error(key, absl::StrCat("expected true or false, got '", text, "'"));
  }
}

void MapReader::Optional(absl::string_view key, std::vector<std::string>* out) {
  const YAML::Node child = Take(key);
  if (!child.IsDefined() || child.IsNull()) return;
  if (!child.IsSequence()) {
    errors_->Add(LineOf(child), KeyPath(key), absl::StrCat("expected a list, got ", Describe(child)));
    return;
  }
  std::vector<std::string> values;
  for (size_t i = 0; i < child.size(); ++i) {
    if (!child[i].IsScalar()) {
      errors_->Add(LineOf(child[i]), absl::StrCat(KeyPath(key), "[", i, "]"),
                   absl::StrCat("expected a single value, got ", Describe(child[i])));
      return;
    }
    values.push_back(child[i].Scalar());
  }
  *out = std::move(values);
}

void MapReader::OptionalEnum(absl::string_view key, std::string* out, const std::vector<std::string>& allowed) {
  std::string value;
  if (!TakeScalar(key, false, &value)) return;
  if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
    Error(key, absl::StrCat("must be one of ", absl::StrJoin(allowed, ", "), ", got '", value, "'"));
    return;
  }
  *out = std::move(value);
}

void MapReader::RequiredPath(absl::string_view key, std::filesystem::path* out) {
  std::string text;
  Required(key, &text);
  if (text.empty()) return;
  const std::filesystem::path path(text);
  *out = path.is_absolute() ? path : (directory_ / path).lexically_normal();
}

void MapReader::OptionalPath(absl::string_view key, std::filesystem::path* out) {
  if (Has(key)) {
    RequiredPath(key, out);
  } else {
    read_keys_.emplace_back(key);
  }
}

MapReader MapReader::Map(absl::string_view key, bool required) {
  const YAML::Node child = Take(key);
  if (!child.IsDefined() || child.IsNull()) {
    if (required) errors_->Add(line_, KeyPath(key), "required section is missing");
    MapReader empty(YAML::Node(YAML::NodeType::Map), KeyPath(key), line_, errors_, directory_);
    return empty;
  }
  if (!child.IsMap()) {
    errors_->Add(LineOf(child), KeyPath(key), absl::StrCat("expected a mapping, got ", Describe(child)));
    return MapReader(YAML::Node(YAML::NodeType::Map), KeyPath(key), LineOf(child), errors_, directory_);
  }
  return MapReader(child, KeyPath(key), LineOf(child), errors_, directory_);
}

std::vector<MapReader> MapReader::MapList(absl::string_view key, bool required) {
  std::vector<MapReader> items;
  const YAML::Node child = Take(key);
  if (!child.IsDefined() || child.IsNull()) {
    if (required) errors_->Add(line_, KeyPath(key), "required list is missing");
    return items;
  }
  if (!child.IsSequence()) {
    errors_->Add(LineOf(child), KeyPath(key), absl::StrCat("expected a list, got ", Describe(child)));
    return items;
  }
  for (size_t i = 0; i < child.size(); ++i) {
    const std::string item_path = absl::StrCat(KeyPath(key), "[", i, "]");
    if (!child[i].IsMap()) {
      errors_->Add(LineOf(child[i]), item_path, absl::StrCat("expected a mapping, got ", Describe(child[i])));
      continue;
    }
    items.push_back(MapReader(child[i], item_path, LineOf(child[i]), errors_, directory_));
  }
  return items;
}

}  // namespace fedattn::config
