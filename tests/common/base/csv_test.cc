#include "fedattn/common/csv.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedattn {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(CsvTest, ParsesQuotesCommasDoubledQuotesAndLineBreaks) {
  const std::string text = "a,b,c\n1,\"x, y\",\"say \"\"hi\"\"\"\n2,\"two\nlines\",3\n";
  auto records = ParseCsvRecords(text, "t.csv");
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 3u);
  EXPECT_THAT((*records)[0].fields, ElementsAre("a", "b", "c"));
  EXPECT_THAT((*records)[1].fields, ElementsAre("1", "x, y", "say \"hi\""));
  EXPECT_THAT((*records)[2].fields, ElementsAre("2", "two\nlines", "3"));
  EXPECT_EQ((*records)[1].raw, "1,\"x, y\",\"say \"\"hi\"\"\"");
  EXPECT_EQ((*records)[2].raw, "2,\"two\nlines\",3");
}

TEST(CsvTest, RecordsKnowTheLineTheyStartOn) {
  // A blank line and a field spanning two lines shift lines against record indices.
  const std::string text = "h1,h2\r\n\r\n1,\"a\r\nb\"\r\n2,c";
  auto records = ParseCsvRecords(text, "t.csv");
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 3u);
  EXPECT_EQ((*records)[0].line, 1);
  EXPECT_EQ((*records)[1].line, 3);
  EXPECT_EQ((*records)[2].line, 5);
  EXPECT_EQ((*records)[2].raw, "2,c");  // the last record needs no line end
  EXPECT_THAT((*records)[1].fields, ElementsAre("1", "a\r\nb"));
}

TEST(CsvTest, EmptyFieldsAndByteOrderMark) {
  auto rows = ParseCsv("\xEF\xBB\xBFx,y,z\n,,\n", "t.csv");
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_THAT((*rows)[0], ElementsAre("x", "y", "z"));
  EXPECT_THAT((*rows)[1], ElementsAre("", "", ""));
  auto empty = ParseCsv("", "t.csv");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(CsvTest, QuoteInsideAnUnquotedFieldIsKept) {
  auto rows = ParseCsv("5'11\",ok\n", "t.csv");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_THAT((*rows)[0], ElementsAre("5'11\"", "ok"));
}

TEST(CsvTest, UnterminatedQuoteNamesTheLineWhereItOpens) {
  auto rows = ParseCsvRecords("a,b\n1,2\n3,\"open\nmore\nstill\n", "t.csv");
  EXPECT_EQ(rows.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(rows.status().message(), HasSubstr("t.csv:3: unterminated quoted field"));
}

}  // namespace
}  // namespace fedattn
