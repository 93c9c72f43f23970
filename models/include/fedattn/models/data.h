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
#include "fedattn/models/data_schema.h"
#include "fedattn/models/model_spec.h"

namespace fedattn::models {

// TabularSchema, TextDataOptions and LoadTabularSchema live in data_schema.h (LibTorch-free).

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

// CSV with a header, or JSON Lines with one object per line (string fields; the label may be
// a string or an integer index). Format by extension: .csv or .jsonl/.json.
[[nodiscard]] absl::StatusOr<std::vector<TextExample>> ReadTextExamples(const std::filesystem::path& path,
                                                                        const TextDataOptions& options);

// Parses CSV text into rows of fields (exposed for tests). `source` names the file in messages.
[[nodiscard]] absl::StatusOr<std::vector<std::vector<std::string>>> ParseCsv(absl::string_view text,
                                                                             absl::string_view source);

}  // namespace fedattn::models
