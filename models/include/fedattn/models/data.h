// From a site's files to tensors: tabular CSV described by a YAML schema, and labelled text in
// CSV or JSONL. Every problem in a file is an error naming the file, the row (1-based, counting
// the header as row 1) and the column. Normalisation and imputation statistics are fitted on the
// training split only. Functions are thread-compatible.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/types.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fedattn/models/batch.h"
#include "fedattn/models/model_spec.h"

namespace fedattn::config {
class MapReader;
}

namespace fedattn::models {

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

[[nodiscard]] absl::StatusOr<TabularSchema> LoadTabularSchema(const std::filesystem::path& path);

// Parsed table, before imputation and normalisation. NaN marks a missing numeric value, -1 a
// missing category.
struct TabularTable {
  std::vector<std::vector<double>> numeric;       // [rows][num_numeric]
  std::vector<std::vector<int64_t>> categorical;  // [rows][num_categorical]
  std::vector<double> labels;                     // class index or regression target
  std::vector<std::string> ids;                   // when the schema has an id column
  int64_t rows() const { return static_cast<int64_t>(labels.size()); }
};

// Reads a CSV (RFC 4180: quotes, embedded commas) with a header. Errors: NOT_FOUND for a missing
// file; INVALID_ARGUMENT for an empty file, a column the schema names but the header lacks, a
// ragged row, a non-numeric number, an unknown category or label, or a missing value where the
// schema says error — each naming file, row and column.
[[nodiscard]] absl::StatusOr<TabularTable> ReadTabularCsv(const std::filesystem::path& path,
                                                          const TabularSchema& schema);

// Imputation values and standardisation fitted on a training split.
struct TabularStats {
  std::vector<double> fill;                  // per numeric feature: imputed value
  std::vector<double> mean, stddev;          // per numeric feature, after imputation
  std::vector<int64_t> category_fill;        // per categorical feature: most frequent code
};

// Fits on the rows `train_rows` of `table` only.
TabularStats FitTabularStats(const TabularTable& table, const TabularSchema& schema,
                             const std::vector<int64_t>& train_rows);
// Imputes and standardises `rows` of `table` into tensors (numeric, categorical, labels).
Batch MakeTabularTensors(const TabularTable& table, const TabularSchema& schema, const TabularStats& stats,
                         const std::vector<int64_t>& rows);

// Deterministic split of rows 0..n-1: `validation_fraction` of them (stratified by class when
// `labels` are class ids) go to validation. Same seed, same split, on every platform.
struct Split {
  std::vector<int64_t> train, validation;
};
Split SplitRows(const std::vector<double>& labels, bool stratify, double validation_fraction, uint64_t seed);

// Labelled text.
struct TextExample {
  std::string text;
  std::string text_pair;  // empty unless a pair column is configured
  int64_t label = 0;
};

struct TextDataOptions {
  absl::Status Validate() const;

  std::string text_column = "text";
  std::string text_pair_column;  // optional second segment
  std::string label_column = "label";
  std::vector<std::string> classes;  // label values, index = class id
};

// CSV with a header, or JSON Lines with one object per line (string fields; the label may be
// a string or an integer index). Format by extension: .csv or .jsonl/.json.
[[nodiscard]] absl::StatusOr<std::vector<TextExample>> ReadTextExamples(const std::filesystem::path& path,
                                                                        const TextDataOptions& options);

// Parses CSV text into rows of fields (exposed for tests). `source` names the file in messages.
[[nodiscard]] absl::StatusOr<std::vector<std::vector<std::string>>> ParseCsv(absl::string_view text,
                                                                             absl::string_view source);

}  // namespace fedattn::models
