#include "fedattn/models/data.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "fedattn/common/files.h"
#include "fedattn/common/status_macros.h"
#include "nlohmann/json.hpp"

namespace fedattn::models {
namespace {

absl::Status CellError(absl::string_view source, int64_t row, absl::string_view column, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": row ", row, ", column '", column, "': ", message));
}

int64_t IndexOf(const std::vector<std::string>& values, absl::string_view value) {
  auto it = std::find(values.begin(), values.end(), value);
  return it == values.end() ? -1 : it - values.begin();
}

// Uniform integer in [0, n) from a 64-bit engine, the same on every standard library (unlike
// std::uniform_int_distribution).
uint64_t UniformBelow(std::mt19937_64& engine, uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = engine(); while (x >= limit);
  return x % n;
}

void Shuffle(std::vector<int64_t>& values, std::mt19937_64& engine) {
  for (size_t i = values.size(); i > 1; --i) std::swap(values[i - 1], values[UniformBelow(engine, i)]);
}

// Header column name -> index; the message lists what the header has.
absl::StatusOr<size_t> FindColumn(const std::vector<std::string>& header, absl::string_view name,
                                  absl::string_view source, absl::string_view role) {
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == name) return i;
  }
  return absl::InvalidArgumentError(absl::StrCat(source, ": row 1: ", role, " column '", name,
                                                 "' is not in the header (", absl::StrJoin(header, ", "), ")"));
}

}  // namespace

absl::StatusOr<std::vector<std::vector<std::string>>> ParseCsv(absl::string_view text, absl::string_view source) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, field_started = false;
  int64_t row_number = 1;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 byte-order mark
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        field += c;
      }
      continue;
    }
    if (c == '"' && !field_started) {
      quoted = field_started = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
      field_started = false;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      row.push_back(std::move(field));
      field.clear();
      field_started = false;
      if (!(row.size() == 1 && row[0].empty())) rows.push_back(std::move(row));  // skip blank lines
      row.clear();
      ++row_number;
    } else {
      field += c;
      field_started = true;
    }
  }
  if (quoted) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": row ", row_number, ": unterminated quoted field"));
  }
  if (field_started || !row.empty()) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

absl::StatusOr<TabularTable> ReadTabularCsv(const std::filesystem::path& path, const TabularSchema& schema) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  const std::string source = path.string();
  ASSIGN_OR_RETURN(auto rows, ParseCsv(text, source));
  if (rows.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": empty file (no header row)"));
  if (rows.size() == 1) return absl::InvalidArgumentError(absl::StrCat(source, ": no data rows after the header"));
  const std::vector<std::string>& header = rows[0];
  ASSIGN_OR_RETURN(size_t label_index, FindColumn(header, schema.label, source, "label"));
  size_t id_index = 0;
  if (!schema.id_column.empty()) {
    ASSIGN_OR_RETURN(id_index, FindColumn(header, schema.id_column, source, "id"));
  }
  std::vector<size_t> feature_index;
  for (const FeatureSchema& feature : schema.features) {
    ASSIGN_OR_RETURN(size_t index, FindColumn(header, feature.name, source, "feature"));
    feature_index.push_back(index);
  }
  TabularTable table;
  for (size_t r = 1; r < rows.size(); ++r) {
    const std::vector<std::string>& row = rows[r];
    const int64_t row_number = static_cast<int64_t>(r) + 1;
    if (row.size() != header.size()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": row ", row_number, ": has ", row.size(),
                                                     " fields, the header has ", header.size()));
    }
    std::vector<double> numeric;
    std::vector<int64_t> categorical;
    for (size_t f = 0; f < schema.features.size(); ++f) {
      const FeatureSchema& feature = schema.features[f];
      const std::string cell(absl::StripAsciiWhitespace(row[feature_index[f]]));
      if (cell.empty() || cell == "NA") {
        if (feature.missing == MissingPolicy::kError) {
          return CellError(source, row_number, feature.name,
                           "missing value (set `missing:` in the schema to impute it)");
        }
        if (feature.categorical) {
          categorical.push_back(-1);
        } else {
          numeric.push_back(std::nan(""));
        }
        continue;
      }
      if (feature.categorical) {
        const int64_t code = IndexOf(feature.categories, cell);
        if (code < 0) {
          return CellError(source, row_number, feature.name,
                           absl::StrCat("unknown category '", cell, "' (expected one of ",
                                        absl::StrJoin(feature.categories, ", "), ")"));
        }
        categorical.push_back(code);
      } else {
        double value;
        if (!absl::SimpleAtod(cell, &value) || !std::isfinite(value)) {
          return CellError(source, row_number, feature.name, absl::StrCat("'", cell, "' is not a number"));
        }
        numeric.push_back(value);
      }
    }
    const std::string label(absl::StripAsciiWhitespace(row[label_index]));
    if (label.empty()) return CellError(source, row_number, schema.label, "missing label");
    if (schema.regression) {
      double value;
      if (!absl::SimpleAtod(label, &value) || !std::isfinite(value)) {
        return CellError(source, row_number, schema.label, absl::StrCat("'", label, "' is not a number"));
      }
      table.labels.push_back(value);
    } else {
      const int64_t index = IndexOf(schema.classes, label);
      if (index < 0) {
        return CellError(source, row_number, schema.label,
                         absl::StrCat("unknown label '", label, "' (expected one of ",
                                      absl::StrJoin(schema.classes, ", "), ")"));
      }
      table.labels.push_back(static_cast<double>(index));
    }
    if (!schema.id_column.empty()) table.ids.push_back(row[id_index]);
    table.numeric.push_back(std::move(numeric));
    table.categorical.push_back(std::move(categorical));
  }
  return table;
}

TabularStats FitTabularStats(const TabularTable& table, const TabularSchema& schema,
                             const std::vector<int64_t>& train_rows) {
  TabularStats stats;
  size_t n = 0, c = 0;
  for (const FeatureSchema& feature : schema.features) {
    if (feature.categorical) {
      std::map<int64_t, int64_t> counts;
      for (int64_t row : train_rows) {
        if (table.categorical[row][c] >= 0) ++counts[table.categorical[row][c]];
      }
      int64_t best = 0, best_count = -1;
      for (const auto& [code, count] : counts) {
        if (count > best_count) best = code, best_count = count;
      }
      stats.category_fill.push_back(best);
      ++c;
      continue;
    }
    std::vector<double> present;
    for (int64_t row : train_rows) {
      if (!std::isnan(table.numeric[row][n])) present.push_back(table.numeric[row][n]);
    }
    double fill = 0;
    if (!present.empty()) {
      if (feature.missing == MissingPolicy::kMedian) {
        std::sort(present.begin(), present.end());
        const size_t m = present.size();
        fill = m % 2 ? present[m / 2] : 0.5 * (present[m / 2 - 1] + present[m / 2]);
      } else {
        fill = std::accumulate(present.begin(), present.end(), 0.0) / present.size();
      }
    }
    // Statistics after imputation, over all training rows.
    double sum = 0, sum_sq = 0;
    for (int64_t row : train_rows) {
      const double v = std::isnan(table.numeric[row][n]) ? fill : table.numeric[row][n];
      sum += v;
      sum_sq += v * v;
    }
    const double count = std::max<double>(1, train_rows.size());
    const double mean = sum / count;
    const double variance = std::max(0.0, sum_sq / count - mean * mean);
    stats.fill.push_back(fill);
    stats.mean.push_back(mean);
    stats.stddev.push_back(variance > 1e-24 ? std::sqrt(variance) : 1.0);
    ++n;
  }
  return stats;
}

Batch MakeTabularTensors(const TabularTable& table, const TabularSchema& schema, const TabularStats& stats,
                         const std::vector<int64_t>& rows) {
  const int64_t num_numeric = schema.num_numeric();
  const int64_t num_categorical = static_cast<int64_t>(schema.features.size()) - num_numeric;
  const int64_t count = static_cast<int64_t>(rows.size());
  Batch batch;
  if (num_numeric > 0) {
    batch.numeric = torch::empty({count, num_numeric}, torch::kFloat32);
    float* out = batch.numeric.data_ptr<float>();
    for (int64_t i = 0; i < count; ++i) {
      for (int64_t j = 0; j < num_numeric; ++j) {
        double v = table.numeric[rows[i]][j];
        if (std::isnan(v)) v = stats.fill[j];
        out[i * num_numeric + j] = static_cast<float>((v - stats.mean[j]) / stats.stddev[j]);
      }
    }
  }
  if (num_categorical > 0) {
    batch.categorical = torch::empty({count, num_categorical}, torch::kInt64);
    int64_t* out = batch.categorical.data_ptr<int64_t>();
    for (int64_t i = 0; i < count; ++i) {
      for (int64_t j = 0; j < num_categorical; ++j) {
        const int64_t code = table.categorical[rows[i]][j];
        out[i * num_categorical + j] = code >= 0 ? code : stats.category_fill[j];
      }
    }
  }
  if (schema.regression) {
    batch.labels = torch::empty({count}, torch::kFloat32);
    for (int64_t i = 0; i < count; ++i) batch.labels[i] = static_cast<float>(table.labels[rows[i]]);
  } else {
    std::vector<int64_t> labels;
    for (int64_t row : rows) labels.push_back(static_cast<int64_t>(table.labels[row]));
    batch.labels = torch::tensor(labels, torch::kInt64);
  }
  return batch;
}

Split SplitRows(const std::vector<double>& labels, bool stratify, double validation_fraction, uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::map<double, std::vector<int64_t>> groups;
  for (size_t i = 0; i < labels.size(); ++i) groups[stratify ? labels[i] : 0.0].push_back(static_cast<int64_t>(i));
  Split split;
  for (auto& [label, rows] : groups) {
    Shuffle(rows, engine);
    const auto take = static_cast<size_t>(std::llround(validation_fraction * static_cast<double>(rows.size())));
    split.validation.insert(split.validation.end(), rows.begin(), rows.begin() + take);
    split.train.insert(split.train.end(), rows.begin() + take, rows.end());
  }
  std::sort(split.train.begin(), split.train.end());
  std::sort(split.validation.begin(), split.validation.end());
  return split;
}

absl::StatusOr<std::vector<TextExample>> ReadTextExamples(const std::filesystem::path& path,
                                                          const TextDataOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  const std::string source = path.string();
  const std::string extension = path.extension().string();
  std::vector<TextExample> examples;
  auto label_of = [&](const std::string& value, int64_t row) -> absl::StatusOr<int64_t> {
    const int64_t index = IndexOf(options.classes, value);
    if (index < 0) {
      return CellError(source, row, options.label_column,
                       absl::StrCat("unknown label '", value, "' (expected one of ",
                                    absl::StrJoin(options.classes, ", "), ")"));
    }
    return index;
  };
  if (extension == ".jsonl" || extension == ".json") {
    int64_t line_number = 0;
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      ++line_number;
      if (absl::StripAsciiWhitespace(line).empty()) continue;
      const nlohmann::json object = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
      if (object.is_discarded() || !object.is_object()) {
        return absl::InvalidArgumentError(absl::StrCat(source, ": line ", line_number, ": not a JSON object"));
      }
      TextExample example;
      auto field = [&](const std::string& column, std::string* out) -> absl::Status {
        if (!object.contains(column)) return CellError(source, line_number, column, "missing field");
        if (!object[column].is_string()) return CellError(source, line_number, column, "expected a string");
        *out = object[column].get<std::string>();
        return absl::OkStatus();
      };
      RETURN_IF_ERROR(field(options.text_column, &example.text));
      if (!options.text_pair_column.empty()) RETURN_IF_ERROR(field(options.text_pair_column, &example.text_pair));
      if (!object.contains(options.label_column)) {
        return CellError(source, line_number, options.label_column, "missing field");
      }
      const nlohmann::json& label = object[options.label_column];
      if (label.is_number_integer()) {
        const int64_t index = label.get<int64_t>();
        if (index < 0 || index >= static_cast<int64_t>(options.classes.size())) {
          return CellError(source, line_number, options.label_column, absl::StrCat("label index ", index, " out of range"));
        }
        example.label = index;
      } else if (label.is_string()) {
        ASSIGN_OR_RETURN(example.label, label_of(label.get<std::string>(), line_number));
      } else {
        return CellError(source, line_number, options.label_column, "expected a string or an integer");
      }
      examples.push_back(std::move(example));
    }
    if (examples.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": empty file (no examples)"));
    return examples;
  }
  ASSIGN_OR_RETURN(auto rows, ParseCsv(text, source));
  if (rows.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": empty file (no header row)"));
  if (rows.size() == 1) return absl::InvalidArgumentError(absl::StrCat(source, ": no data rows after the header"));
  ASSIGN_OR_RETURN(size_t text_index, FindColumn(rows[0], options.text_column, source, "text"));
  ASSIGN_OR_RETURN(size_t label_index, FindColumn(rows[0], options.label_column, source, "label"));
  size_t pair_index = 0;
  if (!options.text_pair_column.empty()) {
    ASSIGN_OR_RETURN(pair_index, FindColumn(rows[0], options.text_pair_column, source, "text pair"));
  }
  for (size_t r = 1; r < rows.size(); ++r) {
    const int64_t row_number = static_cast<int64_t>(r) + 1;
    if (rows[r].size() != rows[0].size()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": row ", row_number, ": has ", rows[r].size(),
                                                     " fields, the header has ", rows[0].size()));
    }
    TextExample example;
    example.text = rows[r][text_index];
    if (!options.text_pair_column.empty()) example.text_pair = rows[r][pair_index];
    ASSIGN_OR_RETURN(example.label, label_of(std::string(absl::StripAsciiWhitespace(rows[r][label_index])), row_number));
    examples.push_back(std::move(example));
  }
  return examples;
}

}  // namespace fedattn::models
