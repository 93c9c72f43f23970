// Splits one CSV data set into one CSV per site, to build a federation out of a public data set
// (the demo's breast-cancer data across three hospitals, the London exam data across schools).
// Every row goes to exactly one site; each site's file has the input's header and its rows in
// the input's order, byte for byte. The same input, options and seed give the same files (a
// 64-bit Mersenne Twister and samplers written here: std:: distributions differ between
// standard libraries).
// Functions are thread-compatible. See docs/operations.md, "Splitting data across sites".
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fedattn::agent {

enum class SplitMode {
  kIid,     // a seeded random split into equal parts
  kLabel,   // label skew: each site's class proportions drawn from a Dirichlet distribution
  kColumn,  // rows grouped by a column's value (e.g. school); whole groups go to sites
};

// "iid", "label", "column".
absl::string_view SplitModeName(SplitMode mode);
[[nodiscard]] absl::StatusOr<SplitMode> ParseSplitMode(absl::string_view name);

struct DataSplitOptions {
  // INVALID_ARGUMENT naming the offending option.
  absl::Status Validate() const;

  SplitMode mode = SplitMode::kIid;
  // Site names (party names: letters, digits, '.', '_', '-'), unique; site s writes <out>/<s>.csv.
  std::vector<std::string> sites;
  // Label mode: the class column (required). Other modes: optional, only counted per site.
  std::string label_column;
  // Column mode: the grouping column (required); unused otherwise.
  std::string group_column;
  // Label mode: Dirichlet concentration alpha > 0. Small alpha: each site mostly one class;
  // +infinity: every site gets the global class proportions. Default 0.5.
  double alpha = 0.5;
  uint64_t seed = 0;
  // Every site gets at least this many rows (>= 1), or the split fails. Default 1.
  int64_t min_rows = 1;
};

// Sites (indices into options.sites) for rows 0..keys.size()-1. `keys` holds each row's label
// in label mode and its group in column mode; iid mode uses only keys.size().
//  - iid: a seeded permutation cut into equal parts (sizes differ by at most one).
//  - label (Hsu, Qi & Brown 2019, "Measuring the Effects of Non-Identical Data Distribution",
//    sec. 3): site sizes are equal as in iid; site s wishes class proportions q_s ~ Dir(alpha·p),
//    p the global class proportions. As every row is used once, the wishes n_s·q_s are fitted to
//    the real class sizes by iterative proportional fitting (the nearest table with those sums,
//    so a shortage is shared by all sites in proportion) and rounded site by site (largest
//    remainder) from each class's seeded queue of rows.
//  - column: groups (distinct keys) largest first, ties in seeded order, each to the site with
//    the fewest rows so far (ties in a seeded order): no group is split; sizes stay balanced.
// INVALID_ARGUMENT when the options are invalid, when there are fewer than
// sites × min_rows rows, or (column mode) fewer groups than sites or a site left with fewer than
// min_rows rows; messages name the counts.
[[nodiscard]] absl::StatusOr<std::vector<int>> AssignRows(const std::vector<std::string>& keys,
                                                          const DataSplitOptions& options);

// One site's part of a split.
struct SiteShare {
  std::string name;
  std::filesystem::path file;            // <out>/<name>.csv
  std::vector<int64_t> rows;             // 0-based data-row indices into the input, ascending
  std::map<std::string, int64_t> labels; // label value -> rows; empty without a label column
  std::vector<std::string> groups;       // column mode: this site's groups, in input order
  std::string sha256;                    // hex SHA-256 of the written file
};

struct DataSplitResult {
  std::filesystem::path input;
  std::string input_sha256;  // hex SHA-256 of the input file's bytes
  int64_t rows = 0;          // data rows in the input (the header excluded)
  std::vector<SiteShare> sites;  // in options.sites order
  std::filesystem::path manifest;  // <out>/manifest.json
};

// Reads `input` (CSV with a header; see fedattn/common/csv.h), assigns its rows with AssignRows,
// and writes <out_dir>/<site>.csv for every site plus <out_dir>/manifest.json (input SHA-256,
// options, per-site rows, label counts, groups and file SHA-256; docs/operations.md). `out_dir`
// is created if missing; files of the same names in it are replaced (each atomically). Lines
// end as the input's header line does (LF or CRLF).
// Errors: NOT_FOUND for a missing input; INVALID_ARGUMENT naming file, line and column for an
// empty file, a column not in the header, a row with the wrong number of fields, an empty label
// (label mode) or group value, a label column with more than 256 distinct values, an output
// that would overwrite the input, and AssignRows' errors.
[[nodiscard]] absl::StatusOr<DataSplitResult> SplitCsvFile(const std::filesystem::path& input,
                                                           const std::filesystem::path& out_dir,
                                                           const DataSplitOptions& options);

}  // namespace fedattn::agent
