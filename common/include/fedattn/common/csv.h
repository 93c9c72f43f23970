// CSV text (RFC 4180) into records. One reader for every tool that reads a site's CSV files (the
// models' datasets, the data splitter), so they agree on what a file means. Thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fedattn {

// One record (row) of a CSV file.
struct CsvRecord {
  std::vector<std::string> fields;  // unquoted values
  int64_t line = 0;                 // 1-based line of the file on which the record starts
  // The record's bytes exactly as in the parsed text, quotes included, line end excluded. Points
  // into the text given to ParseCsvRecords: valid while that text is.
  absl::string_view raw;
};

// Parses CSV text: fields separated by commas, records by LF, CRLF or CR. A field that starts
// with '"' is quoted: it may hold commas, line breaks and doubled quotes (""). A quote inside an
// unquoted field is kept as it is. A leading UTF-8 byte-order mark and blank lines are skipped.
// `source` names the file in errors. INVALID_ARGUMENT for an unterminated quoted field, naming
// the line where it starts. Rows are not checked for equal length (callers name their columns).
[[nodiscard]] absl::StatusOr<std::vector<CsvRecord>> ParseCsvRecords(absl::string_view text,
                                                                     absl::string_view source);

// ParseCsvRecords, fields only.
[[nodiscard]] absl::StatusOr<std::vector<std::vector<std::string>>> ParseCsv(absl::string_view text,
                                                                             absl::string_view source);

}  // namespace fedattn
