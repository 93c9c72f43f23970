#include "fedattn/config/yaml_reader.h"

#include "gmock/gmock.h"
#include <fstream>

#include "gtest/gtest.h"
#include "util/temp_dir.h"

namespace fedattn::config {
namespace {

using ::testing::HasSubstr;

struct Options {
  std::string name;
  int64_t count = 3;
  double rate = 0.5;
  bool enabled = false;
  std::vector<std::string> tags;
  std::string mode = "fast";
  std::filesystem::path data;
};

// Reads the test schema; returns the document's verdict.
absl::Status Read(const std::string& text, Options* options) {
  auto doc = YamlDocument::Parse(text, "test.yaml");
  if (!doc.ok()) return doc.status();
  {
    MapReader root = doc->Root();
    MapReader site = root.Map("site");
    site.Required("name", &options->name);
    site.Optional("count", &options->count, 1, 10);
    site.Optional("rate", &options->rate, 0.0, 1.0);
    site.Optional("enabled", &options->enabled);
    site.Optional("tags", &options->tags);
    site.OptionalEnum("mode", &options->mode, {"fast", "slow"});
    site.OptionalPath("data", &options->data);
  }
  return doc->Finish();
}

TEST(YamlReaderTest, ReadsEveryType) {
  Options options;
  const absl::Status status = Read(
      "site:\n  name: a\n  count: 7\n  rate: 0.25\n  enabled: true\n  tags: [x, y]\n  mode: slow\n  data: d.csv\n",
      &options);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(options.name, "a");
  EXPECT_EQ(options.count, 7);
  EXPECT_DOUBLE_EQ(options.rate, 0.25);
  EXPECT_TRUE(options.enabled);
  EXPECT_EQ(options.tags, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(options.mode, "slow");
  EXPECT_EQ(options.data, std::filesystem::path("d.csv"));
}

TEST(YamlReaderTest, OptionalKeysKeepDefaults) {
  Options options;
  ASSERT_TRUE(Read("site:\n  name: a\n", &options).ok());
  EXPECT_EQ(options.count, 3);
  EXPECT_EQ(options.mode, "fast");
}

struct BadInput {
  std::string name;
  std::string yaml;
  std::string expected;  // the message must contain this (file, line, key path, problem)
};

class YamlReaderBadInputTest : public ::testing::TestWithParam<BadInput> {};

TEST_P(YamlReaderBadInputTest, NamesFileLineAndKey) {
  Options options;
  const absl::Status status = Read(GetParam().yaml, &options);
  ASSERT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr(GetParam().expected));
}

INSTANTIATE_TEST_SUITE_P(
    Catalogue, YamlReaderBadInputTest,
    ::testing::Values(
        BadInput{"UnknownKey", "site:\n  name: a\n  colour: red\n", "test.yaml:3: site.colour: unknown key"},
        BadInput{"UnknownTopLevelKey", "site:\n  name: a\nextra: 1\n", "test.yaml:3: extra: unknown key"},
        BadInput{"WrongTypeInteger", "site:\n  name: a\n  count: many\n",
                 "test.yaml:3: site.count: expected an integer, got 'many'"},
        BadInput{"FractionForInteger", "site:\n  name: a\n  count: 1.5\n", "site.count: expected an integer"},
        BadInput{"WrongTypeNumber", "site:\n  name: a\n  rate: fast\n", "test.yaml:3: site.rate: expected a number"},
        BadInput{"WrongTypeBool", "site:\n  name: a\n  enabled: maybe\n",
                 "test.yaml:3: site.enabled: expected true or false"},
        BadInput{"ListForScalar", "site:\n  name: [a, b]\n", "test.yaml:2: site.name: expected a single value, got a list"},
        BadInput{"ScalarForList", "site:\n  name: a\n  tags: x\n", "test.yaml:3: site.tags: expected a list"},
        BadInput{"ScalarForMap", "site: 3\n", "test.yaml:1: site: expected a mapping"},
        BadInput{"MissingRequired", "site:\n  count: 2\n", "test.yaml:2: site.name: required key is missing"},
        BadInput{"MissingSection", "other: 1\n", "site: required section is missing"},
        BadInput{"OutOfRangeHigh", "site:\n  name: a\n  count: 11\n",
                 "test.yaml:3: site.count: must be between 1 and 10, got 11"},
        BadInput{"OutOfRangeLow", "site:\n  name: a\n  rate: -0.1\n", "test.yaml:3: site.rate: must be between 0 and 1"},
        BadInput{"NotInEnum", "site:\n  name: a\n  mode: warp\n", "test.yaml:3: site.mode: must be one of fast, slow"},
        BadInput{"EmptyRequired", "site:\n  name: ''\n", "test.yaml:2: site.name: must not be empty"},
        BadInput{"NotYaml", "site: [unclosed\n", "test.yaml:2: not valid YAML"},
        BadInput{"NotAMapping", "- a\n- b\n", "expected a mapping at the top"}),
    [](const ::testing::TestParamInfo<BadInput>& info) { return info.param.name; });

TEST(YamlReaderTest, ReportsEveryProblemAtOnce) {
  Options options;
  const absl::Status status = Read("site:\n  count: x\n  colour: red\n", &options);
  EXPECT_THAT(std::string(status.message()), HasSubstr("site.name: required key is missing"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("site.count: expected an integer"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("site.colour: unknown key"));
}

TEST(YamlReaderTest, MapListIndexesItemsInKeyPaths) {
  auto doc = YamlDocument::Parse("sites:\n  - name: a\n  - nom: b\n", "list.yaml");
  ASSERT_TRUE(doc.ok());
  {
    MapReader root = doc->Root();
    for (MapReader& site : root.MapList("sites")) {
      std::string name;
      site.Required("name", &name);
    }
  }
  const absl::Status status = doc->Finish();
  EXPECT_THAT(std::string(status.message()), HasSubstr("list.yaml:3: sites[1].nom: unknown key"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("sites[1].name: required key is missing"));
}

TEST(YamlReaderTest, LoadResolvesPathsAgainstTheFileDirectory) {
  fedattn::testing::TempDir temp;
  const std::filesystem::path dir = temp.path();
  {
    std::ofstream(dir / "c.yaml") << "site:\n  name: a\n  data: sub/d.csv\n";
  }
  auto doc = YamlDocument::Load(dir / "c.yaml");
  ASSERT_TRUE(doc.ok());
  std::filesystem::path data;
  {
    MapReader root = doc->Root();
    MapReader site = root.Map("site");
    std::string name;
    site.Required("name", &name);
    site.RequiredPath("data", &data);
  }
  ASSERT_TRUE(doc->Finish().ok());
  EXPECT_EQ(data, dir / "sub" / "d.csv");
}

TEST(YamlReaderTest, LoadOfMissingFileIsNotFound) {
  auto doc = YamlDocument::Load("/nonexistent/fedattn.yaml");
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(doc.status().message()), HasSubstr("/nonexistent/fedattn.yaml"));
}

}  // namespace
}  // namespace fedattn::config
