// What a site's data looks like, without LibTorch: the tabular schema (configs/data/*.schema.yaml)
// and the text columns. Part of fedattn_model_spec, so the coordinator can size a tabular model
// from a job's schema (one token per feature) without linking LibTorch; reading the data itself
// is data.h's.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fedattn/models/model_spec.h"

namespace fedattn::config {
class MapReader;
}

namespace fedattn::models {

enum class DataKind { kTabular, kText };

// How a missing value (empty cell) in a feature is handled.
enum class MissingPolicy { kError, kMean, kMedian, kMostFrequent };

struct FeatureSchema {
  std::string name;                      // column name in the header
  bool categorical = false;              // numeric otherwise
  std::vector<std::string> categories;   // categorical: every allowed value, in code order
  MissingPolicy missing = MissingPolicy::kError;  // numeric: error|mean|median; categorical: error|most_frequent
};

// configs/data/*.schema.yaml, see docs/models.md.
struct TabularSchema {
  absl::Status Validate() const;
  int64_t num_numeric() const;
  std::vector<int64_t> cardinalities() const;  // of the categorical features, in schema order
  // Copies the input sizes and task into a tabular model's options.
  void ConfigureModel(TabularTransformerOptions* options) const;

  std::vector<FeatureSchema> features;  // model input order: numeric first is not required
  std::string label;                    // label column
  bool regression = false;              // false: classification over `classes`
  std::vector<std::string> classes;     // classification: label values, index = class id
  std::string positive_class;           // binary: the class ROC-AUC scores (default: classes[1])
  std::string id_column;                // optional; read and ignored by the model
};

// Reads the mapping under `schema:` of a schema file (or a job's inlined data.schema); problems
// are recorded in the reader's document. Does not call Validate().
void ReadTabularSchema(config::MapReader& schema, TabularSchema* out);
// Loads a schema file and validates it.
[[nodiscard]] absl::StatusOr<TabularSchema> LoadTabularSchema(const std::filesystem::path& path);

// Columns and classes of labelled text.
struct TextDataOptions {
  absl::Status Validate() const;

  std::string text_column = "text";
  std::string text_pair_column;  // optional second segment
  std::string label_column = "label";
  std::vector<std::string> classes;  // label values, index = class id
};

}  // namespace fedattn::models
