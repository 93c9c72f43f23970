#include "fedattn/common/csv.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace fedattn {

absl::StatusOr<std::vector<CsvRecord>> ParseCsvRecords(absl::string_view text, absl::string_view source) {
  std::vector<CsvRecord> records;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 byte-order mark
  CsvRecord record;
  std::string field;
  bool quoted = false, field_started = false;
  int64_t line = 1, quote_line = 0;
  size_t record_begin = 0;
  record.line = 1;
  auto end_record = [&](size_t end) {
    record.fields.push_back(std::move(field));
    field.clear();
    field_started = false;
    record.raw = text.substr(record_begin, end - record_begin);
    if (!record.raw.empty()) records.push_back(std::move(record));  // a blank line is no record
    record = CsvRecord();
  };
  size_t i = 0;
  for (; i < text.size(); ++i) {
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
        // A line break inside quotes belongs to the field but still advances the line count.
        if (c == '\n' || (c == '\r' && !(i + 1 < text.size() && text[i + 1] == '\n'))) ++line;
        field += c;
      }
      continue;
    }
    if (c == '"' && !field_started) {
      quoted = field_started = true;
      quote_line = line;
    } else if (c == ',') {
      record.fields.push_back(std::move(field));
      field.clear();
      field_started = false;
    } else if (c == '\n' || c == '\r') {
      end_record(i);
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      ++line;
      record_begin = i + 1;
      record.line = line;
    } else {
      field += c;
      field_started = true;
    }
  }
  if (quoted) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ":", quote_line, ": unterminated quoted field (its quote opens on this line)"));
  }
  if (record_begin < text.size()) end_record(text.size());  // last record without a line end
  return records;
}

absl::StatusOr<std::vector<std::vector<std::string>>> ParseCsv(absl::string_view text, absl::string_view source) {
  auto records = ParseCsvRecords(text, source);
  if (!records.ok()) return records.status();
  std::vector<std::vector<std::string>> rows;
  rows.reserve(records->size());
  for (CsvRecord& record : *records) rows.push_back(std::move(record.fields));
  return rows;
}

}  // namespace fedattn
