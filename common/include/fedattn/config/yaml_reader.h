// Reads a YAML file into typed Options structs, collecting every problem with the file, the line
// and the key path ("configs/site.yaml:7: agent.heartbeat_seconds: expected an integer, got 'x'").
//
//   ASSIGN_OR_RETURN(YamlDocument doc, YamlDocument::Load(path));
//   {
//     MapReader root = doc.Root();
//     MapReader site = root.Map("site");
//     site.Required("name", &options.name);
//     site.Optional("heartbeat_seconds", &options.heartbeat_seconds, /*min=*/1, /*max=*/3600);
//   }  // readers report the keys nobody asked for as they go out of scope
//   RETURN_IF_ERROR(doc.Finish());
//
// Components never read YAML themselves: a loader fills their Options, then Options::Validate().
// Not thread-safe; a document and its readers belong to one thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "yaml-cpp/yaml.h"

namespace fedattn::config {

class MapReader;

class YamlDocument {
 public:
  // Parses `path`. NOT_FOUND if missing, INVALID_ARGUMENT (with file and line) if not YAML.
  [[nodiscard]] static absl::StatusOr<YamlDocument> Load(const std::filesystem::path& path);
  // Parses `text`; `source_name` stands for the file in messages.
  [[nodiscard]] static absl::StatusOr<YamlDocument> Parse(absl::string_view text, std::string source_name);

  // The top-level mapping. A document that is not a mapping records an error.
  MapReader Root();

  // Directory of the file, against which relative paths in it are resolved.
  const std::filesystem::path& directory() const { return directory_; }

  // Records a problem found after reading (cross-field checks), at the node of `key_path`.
  void AddError(int line, absl::string_view key_path, absl::string_view message);

  // OK if nothing went wrong; otherwise INVALID_ARGUMENT listing every problem, one per line.
  [[nodiscard]] absl::Status Finish() const;

  struct Errors;

 private:
  YamlDocument(YAML::Node root, std::string source, std::filesystem::path directory);

  YAML::Node root_;
  std::filesystem::path directory_;
  std::shared_ptr<Errors> errors_;
};

// A view of one YAML mapping. Every key read is marked; keys never read are reported as unknown
// when the reader is destroyed (so each reader must be kept until all its keys are read).
class MapReader {
 public:
  MapReader(const MapReader&) = delete;
  MapReader& operator=(const MapReader&) = delete;
  MapReader(MapReader&&) noexcept;
  MapReader& operator=(MapReader&&) = delete;
  ~MapReader();

  bool Has(absl::string_view key) const;

  // Required fields: missing is an error. Optional ones keep *out unchanged when absent.
  void Required(absl::string_view key, std::string* out);
  void Required(absl::string_view key, int64_t* out, int64_t min = INT64_MIN, int64_t max = INT64_MAX);
  void Required(absl::string_view key, double* out, double min = -1e300, double max = 1e300);
  void Optional(absl::string_view key, std::string* out);
  void Optional(absl::string_view key, int64_t* out, int64_t min = INT64_MIN, int64_t max = INT64_MAX);
  void Optional(absl::string_view key, double* out, double min = -1e300, double max = 1e300);
  void Optional(absl::string_view key, bool* out);
  void Optional(absl::string_view key, std::vector<std::string>* out);
  // A string that must be one of `allowed`.
  void OptionalEnum(absl::string_view key, std::string* out, const std::vector<std::string>& allowed);
  // A path; relative paths are resolved against the YAML file's directory.
  void RequiredPath(absl::string_view key, std::filesystem::path* out);
  void OptionalPath(absl::string_view key, std::filesystem::path* out);

  // Nested mapping. A missing required mapping is an error and yields an empty reader.
  MapReader Map(absl::string_view key, bool required = true);
  // A sequence of mappings (empty when absent and not required).
  std::vector<MapReader> MapList(absl::string_view key, bool required = true);

  // Records an error about `key` (or about this mapping when `key` is empty).
  void Error(absl::string_view key, absl::string_view message);

  const std::string& path() const { return path_; }
  int line() const { return line_; }

 private:
  friend class YamlDocument;
  MapReader(YAML::Node node, std::string path, int line, std::shared_ptr<YamlDocument::Errors> errors,
            std::filesystem::path directory);

  // The child node for `key`, marked as read; null node when absent.
  YAML::Node Take(absl::string_view key);
  std::string KeyPath(absl::string_view key) const;
  int LineOf(const YAML::Node& node) const;
  bool TakeScalar(absl::string_view key, bool required, std::string* out);

  YAML::Node node_;
  std::string path_;
  int line_;
  std::shared_ptr<YamlDocument::Errors> errors_;
  std::filesystem::path directory_;
  std::vector<std::string> read_keys_;
  bool active_ = true;
};

}  // namespace fedattn::config
