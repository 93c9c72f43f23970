#include "fedattn/models/data.h"

#include <fstream>

#include <torch/torch.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/temp_dir.h"

namespace fedattn::models {
namespace {

using ::testing::HasSubstr;

const std::filesystem::path kSource = FEDATTN_SOURCE_DIR;

class DataTest : public ::testing::Test {
 protected:
  std::filesystem::path Write(const std::string& name, const std::string& text) {
    const std::filesystem::path path = dir_ / name;
    std::ofstream(path) << text;
    return path;
  }

  absl::StatusOr<TabularTable> ReadWith(const std::string& schema_yaml, const std::string& csv) {
    auto schema = LoadTabularSchema(Write("s.schema.yaml", schema_yaml));
    if (!schema.ok()) return schema.status();
    return ReadTabularCsv(Write("d.csv", csv), *schema);
  }

  testing::TempDir dir_;
};

const char kSchema[] = R"(schema:
  label: {column: y, classes: [no, yes], positive: yes}
  features:
    - {name: age, kind: numeric, missing: median}
    - {name: dose, kind: numeric}
    - {name: ward, kind: categorical, categories: [a, b], missing: most_frequent}
)";

TEST_F(DataTest, LoadsEveryBundledSchemaAndFile) {
  struct Case {
    const char *schema, *csv;
    int64_t rows, numeric, categorical;
  } cases[] = {{"wdbc.schema.yaml", "data/wdbc.csv", 569, 30, 0},
               {"pima_diabetes.schema.yaml", "data/gpl/pima_diabetes.csv", 768, 8, 0},
               {"nmes1988_health.schema.yaml", "data/gpl/nmes1988_health.csv", 4406, 10, 8},
               {"exam_london_schools.schema.yaml", "data/gpl/exam_london_schools.csv", 4059, 1, 5}};
  for (const Case& c : cases) {
    auto schema = LoadTabularSchema(kSource / "configs/data" / c.schema);
    ASSERT_TRUE(schema.ok()) << schema.status();
    EXPECT_EQ(schema->num_numeric(), c.numeric);
    EXPECT_EQ(static_cast<int64_t>(schema->cardinalities().size()), c.categorical);
    auto table = ReadTabularCsv(kSource / c.csv, *schema);
    ASSERT_TRUE(table.ok()) << table.status();
    EXPECT_EQ(table->rows(), c.rows);
  }
}

TEST_F(DataTest, ReadsQuotedCsvAndImputesFromTrainingRowsOnly) {
  auto table = ReadWith(kSchema, "id,age,dose,ward,y\n1,10,1.5,a,no\n2,,2.5,\"b\",yes\n3,30,3.5,,no\n4,1000,4.5,a,yes\n");
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->rows(), 4);
  EXPECT_TRUE(std::isnan(table->numeric[1][0]));
  EXPECT_EQ(table->categorical[2][0], -1);
  auto schema = LoadTabularSchema(dir_ / "s.schema.yaml");
  // Fitted on rows 0-2: the median age is 20, row 3's 1000 is not seen.
  const TabularStats stats = FitTabularStats(*table, *schema, {0, 1, 2});
  EXPECT_DOUBLE_EQ(stats.fill[0], 20.0);
  EXPECT_DOUBLE_EQ(stats.mean[0], 20.0);
  EXPECT_DOUBLE_EQ(stats.mean[1], 2.5);
  EXPECT_EQ(stats.category_fill[0], 0);
  Batch batch = MakeTabularTensors(*table, *schema, stats, {1, 2});
  EXPECT_FLOAT_EQ(batch.numeric[0][0].item<float>(), 0.0f);  // imputed 20 standardises to 0
  EXPECT_EQ(batch.categorical[1][0].item<int64_t>(), 0);
  EXPECT_EQ(batch.labels[0].item<int64_t>(), 1);
}

TEST_F(DataTest, ErrorsNameFileRowAndColumn) {
  struct Case {
    std::string csv, message;
  } cases[] = {
      {"age,dose,ward,y\n1,x2,a,no\n", "d.csv: row 2, column 'dose': 'x2' is not a number"},
      {"age,dose,ward,y\n1,2,a,no\n1,,a,no\n", "d.csv: row 3, column 'dose': missing value"},
      {"age,dose,ward,y\n1,2,c,no\n", "d.csv: row 2, column 'ward': unknown category 'c' (expected one of a, b)"},
      {"age,dose,ward,y\n1,2,a,maybe\n", "d.csv: row 2, column 'y': unknown label 'maybe'"},
      {"age,dose,ward,y\n1,2,a,no\n1,2,a\n", "d.csv: row 3: has 3 fields, the header has 4"},
      {"age,ward,y\n1,a,no\n", "d.csv: row 1: feature column 'dose' is not in the header (age, ward, y)"},
      {"", "d.csv: empty file"},
      {"age,dose,ward,y\n", "d.csv: no data rows"},
      {"age,dose,ward,y\n1,2,\"a,no\n", "d.csv: row 2: unterminated quoted field"},
  };
  for (const Case& c : cases) {
    auto table = ReadWith(kSchema, c.csv);
    EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument) << c.csv;
    EXPECT_THAT(table.status().message(), HasSubstr(c.message));
  }
  EXPECT_EQ(ReadTabularCsv(dir_ / "absent.csv", *LoadTabularSchema(dir_ / "s.schema.yaml")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(DataTest, SchemaErrorsNameLineAndKey) {
  struct Case {
    std::string yaml, message;
  } cases[] = {
      {"schema:\n  label: {column: y, classes: [a, b]}\n  features:\n    - {name: x, kind: text}\n",
       "bad.schema.yaml:4:"},
      {"schema:\n  label: {column: y, classes: [a]}\n  features:\n    - {name: x}\n", "list at least 2 classes"},
      {"schema:\n  label: {column: y, classes: [a, b]}\n  features:\n    - {name: x, kind: categorical}\n",
       "categorical feature 'x' lists no categories"},
      {"schema:\n  label: {column: y, classes: [a, b]}\n  features:\n    - {name: y}\n", "column 'y' is used twice"},
      {"schema:\n  label: {column: y, classes: [a, b]}\n  features:\n    - {name: x, missing: most_frequent}\n",
       "numeric feature 'x': missing must be error, mean or median"},
      {"schema:\n  label: {column: y, classes: [a, b], colour: red}\n  features:\n    - {name: x}\n",
       "schema.label.colour: unknown key"},
  };
  for (const Case& c : cases) {
    auto schema = LoadTabularSchema(Write("bad.schema.yaml", c.yaml));
    EXPECT_FALSE(schema.ok()) << c.yaml;
    EXPECT_THAT(schema.status().message(), HasSubstr(c.message));
  }
}

TEST_F(DataTest, SplitIsDeterministicAndStratified) {
  std::vector<double> labels(100, 0.0);
  for (int i = 0; i < 30; ++i) labels[i * 3] = 1.0;
  const Split a = SplitRows(labels, true, 0.2, 42), b = SplitRows(labels, true, 0.2, 42), c = SplitRows(labels, true, 0.2, 43);
  EXPECT_EQ(a.validation, b.validation);
  EXPECT_NE(a.validation, c.validation);
  EXPECT_EQ(a.validation.size(), 20u);
  EXPECT_EQ(a.train.size(), 80u);
  int positives = 0;
  for (int64_t row : a.validation) positives += labels[row] == 1.0;
  EXPECT_EQ(positives, 6);
}

TEST_F(DataTest, TextFromCsvAndJsonl) {
  TextDataOptions options;
  options.text_column = "note";
  options.classes = {"neg", "pos"};
  auto csv = ReadTextExamples(Write("t.csv", "note,label\n\"fever, cough\",pos\nfine,neg\n"), options);
  ASSERT_TRUE(csv.ok()) << csv.status();
  ASSERT_EQ(csv->size(), 2u);
  EXPECT_EQ((*csv)[0].text, "fever, cough");
  EXPECT_EQ((*csv)[0].label, 1);
  auto jsonl = ReadTextExamples(Write("t.jsonl", "{\"note\": \"a\", \"label\": \"neg\"}\n\n{\"note\": \"b\", \"label\": 1}\n"), options);
  ASSERT_TRUE(jsonl.ok()) << jsonl.status();
  EXPECT_EQ((*jsonl)[1].label, 1);
  auto bad = ReadTextExamples(Write("b.jsonl", "{\"note\": \"a\", \"label\": \"neg\"}\n{\"note\": 3, \"label\": \"neg\"}\n"), options);
  EXPECT_THAT(bad.status().message(), HasSubstr("b.jsonl: row 2, column 'note': expected a string"));
  bad = ReadTextExamples(Write("b.csv", "note,label\nx,maybe\n"), options);
  EXPECT_THAT(bad.status().message(), HasSubstr("b.csv: row 2, column 'label': unknown label 'maybe'"));
  bad = ReadTextExamples(Write("e.jsonl", ""), options);
  EXPECT_THAT(bad.status().message(), HasSubstr("e.jsonl: empty file"));
}

}  // namespace
}  // namespace fedattn::models
