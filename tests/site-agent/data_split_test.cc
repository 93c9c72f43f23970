#include "fedattn/agent/data_split.h"

#include <fstream>
#include <limits>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "fedattn/common/files.h"
#include "fedattn/crypto/digest.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "util/temp_dir.h"

namespace fedattn::agent {
namespace {

using ::testing::HasSubstr;

const std::filesystem::path kSource = FEDATTN_SOURCE_DIR;

DataSplitOptions Options(SplitMode mode, int sites, uint64_t seed = 7) {
  DataSplitOptions options;
  options.mode = mode;
  for (int s = 0; s < sites; ++s) options.sites.push_back(absl::StrCat("site-", s + 1));
  options.seed = seed;
  options.label_column = "y";
  options.group_column = "g";
  return options;
}

// `rows` labels: the first `positives` are "pos", the rest "neg".
std::vector<std::string> Labels(int rows, int positives) {
  std::vector<std::string> labels(rows, "neg");
  for (int i = 0; i < positives; ++i) labels[i] = "pos";
  return labels;
}

// counts[site][label]
std::vector<std::map<std::string, int64_t>> Histogram(const std::vector<int>& site_of,
                                                      const std::vector<std::string>& labels, int sites) {
  std::vector<std::map<std::string, int64_t>> counts(sites);
  for (size_t r = 0; r < site_of.size(); ++r) ++counts[site_of[r]][labels[r]];
  return counts;
}

void ExpectEveryRowOnce(const std::vector<int>& site_of, size_t rows, int sites) {
  ASSERT_EQ(site_of.size(), rows);
  for (int s : site_of) {
    EXPECT_GE(s, 0);
    EXPECT_LT(s, sites);
  }
}

TEST(DataSplitTest, SameSeedSameSplitOtherSeedOtherSplit) {
  const std::vector<std::string> labels = Labels(300, 100);
  std::vector<std::string> groups;
  for (int r = 0; r < 300; ++r) groups.push_back(absl::StrCat("g", r % 17));
  for (SplitMode mode : {SplitMode::kIid, SplitMode::kLabel, SplitMode::kColumn}) {
    SCOPED_TRACE(SplitModeName(mode));
    const std::vector<std::string>& keys = mode == SplitMode::kColumn ? groups : labels;
    auto a = AssignRows(keys, Options(mode, 3, 7));
    auto b = AssignRows(keys, Options(mode, 3, 7));
    auto c = AssignRows(keys, Options(mode, 3, 8));
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok() && c.ok());
    EXPECT_EQ(*a, *b);
    EXPECT_NE(*a, *c);
  }
}

TEST(DataSplitTest, IidGivesEqualSizes) {
  auto split = AssignRows(std::vector<std::string>(100), Options(SplitMode::kIid, 3));
  ASSERT_TRUE(split.ok()) << split.status();
  ExpectEveryRowOnce(*split, 100, 3);
  std::vector<int> sizes(3, 0);
  for (int s : *split) ++sizes[s];
  EXPECT_EQ(sizes, (std::vector<int>{34, 33, 33}));
}

TEST(DataSplitTest, LabelSplitUsesEveryRowOnceAtAnyAlpha) {
  const std::vector<std::string> labels = Labels(569, 212);  // WDBC's class sizes
  for (double alpha : {1e-320, 0.01, 0.1, 0.5, 1.0, 10.0, 1e6, std::numeric_limits<double>::infinity()}) {
    for (uint64_t seed = 0; seed < 20; ++seed) {
      SCOPED_TRACE(absl::StrCat("alpha ", alpha, " seed ", seed));
      DataSplitOptions options = Options(SplitMode::kLabel, 3, seed);
      options.alpha = alpha;
      auto split = AssignRows(labels, options);
      ASSERT_TRUE(split.ok()) << split.status();
      ExpectEveryRowOnce(*split, labels.size(), 3);
      const auto counts = Histogram(*split, labels, 3);
      int64_t pos = 0;
      for (int s = 0; s < 3; ++s) {
        const auto get = [&](const char* k) { return counts[s].count(k) ? counts[s].at(k) : 0; };
        EXPECT_EQ(get("pos") + get("neg"), s < 2 ? 190 : 189);  // equal sizes, as in Hsu et al.
        pos += get("pos");
      }
      EXPECT_EQ(pos, 212);
    }
  }
}

TEST(DataSplitTest, LargeAlphaGivesTheGlobalProportions) {
  const std::vector<std::string> labels = Labels(600, 150);  // 25% positive
  // Infinite alpha: each site's count is 37.5 rounded, either way; 1e6: q is within ~0.001 of p.
  for (auto [alpha, tolerance] : {std::pair{1e6, 2.0}, std::pair{std::numeric_limits<double>::infinity(), 0.5}}) {
    for (uint64_t seed = 0; seed < 10; ++seed) {
      DataSplitOptions options = Options(SplitMode::kLabel, 4, seed);
      options.alpha = alpha;
      auto split = AssignRows(labels, options);
      ASSERT_TRUE(split.ok()) << split.status();
      for (const auto& site : Histogram(*split, labels, 4)) {
        EXPECT_NEAR(site.at("pos"), 37.5, tolerance) << "alpha " << alpha << " seed " << seed;
        EXPECT_NEAR(site.at("neg"), 112.5, tolerance) << "alpha " << alpha << " seed " << seed;
      }
    }
  }
}

TEST(DataSplitTest, SmallAlphaSkewsTheSites) {
  // Three balanced classes over 12 sites: with alpha 0.05 most sites hold mostly one class.
  std::vector<std::string> labels;
  for (int r = 0; r < 1200; ++r) labels.push_back(absl::StrCat("c", r % 3));
  DataSplitOptions options = Options(SplitMode::kLabel, 12, 11);
  options.alpha = 0.05;
  auto split = AssignRows(labels, options);
  ASSERT_TRUE(split.ok()) << split.status();
  int skewed = 0;
  for (const auto& site : Histogram(*split, labels, 12)) {
    int64_t top = 0;
    for (const auto& [label, count] : site) top = std::max(top, count);
    if (top >= 80) ++skewed;  // >= 80% of the site's 100 rows
  }
  EXPECT_GE(skewed, 8);
  options.alpha = std::numeric_limits<double>::infinity();
  split = AssignRows(labels, options);
  ASSERT_TRUE(split.ok());
  for (const auto& site : Histogram(*split, labels, 12)) {
    for (const auto& [label, count] : site) EXPECT_NEAR(count, 100.0 / 3, 1.0);
  }
}

TEST(DataSplitTest, ColumnModeNeverSplitsAGroupAndBalancesRows) {
  // 40 groups of sizes 1..40 (820 rows), interleaved.
  std::vector<std::string> groups;
  for (int size = 1; size <= 40; ++size) {
    for (int i = 0; i < size; ++i) groups.push_back(absl::StrCat("school-", size));
  }
  std::swap(groups[0], groups[400]);
  for (uint64_t seed = 0; seed < 10; ++seed) {
    auto split = AssignRows(groups, Options(SplitMode::kColumn, 5, seed));
    ASSERT_TRUE(split.ok()) << split.status();
    ExpectEveryRowOnce(*split, groups.size(), 5);
    std::map<std::string, std::set<int>> sites_of_group;
    std::vector<int64_t> load(5, 0);
    for (size_t r = 0; r < groups.size(); ++r) {
      sites_of_group[groups[r]].insert((*split)[r]);
      ++load[(*split)[r]];
    }
    for (const auto& [group, sites] : sites_of_group) EXPECT_EQ(sites.size(), 1u) << group;
    const auto [lo, hi] = std::minmax_element(load.begin(), load.end());
    EXPECT_LE(*hi - *lo, 40) << "seed " << seed;  // within the largest group (LPT bound)
  }
}

TEST(DataSplitTest, AssignmentErrorsNameTheCounts) {
  struct Case {
    std::vector<std::string> keys;
    DataSplitOptions options;
    std::string message;
  };
  DataSplitOptions min10 = Options(SplitMode::kIid, 3);
  min10.min_rows = 10;
  DataSplitOptions big_group = Options(SplitMode::kColumn, 2);
  big_group.min_rows = 5;
  std::vector<std::string> skewed_groups(20, "a");
  skewed_groups.insert(skewed_groups.end(), {"b", "b"});
  DataSplitOptions no_sites = Options(SplitMode::kIid, 0);
  DataSplitOptions twice = Options(SplitMode::kIid, 2);
  twice.sites[1] = twice.sites[0];
  DataSplitOptions bad_name = Options(SplitMode::kIid, 1);
  bad_name.sites[0] = "../x";
  DataSplitOptions zero_alpha = Options(SplitMode::kLabel, 2);
  zero_alpha.alpha = 0;
  DataSplitOptions no_label = Options(SplitMode::kLabel, 2);
  no_label.label_column.clear();
  DataSplitOptions no_group = Options(SplitMode::kColumn, 2);
  no_group.group_column.clear();
  DataSplitOptions zero_min = Options(SplitMode::kIid, 2);
  zero_min.min_rows = 0;
  const Case cases[] = {
      {std::vector<std::string>(29), min10, "29 data row(s) cannot give 3 site(s) at least 10 row(s) each (that needs 30)"},
      {{"a", "a", "b", "b"}, Options(SplitMode::kColumn, 3), "column 'g' has 2 distinct value(s), fewer than the 3 sites"},
      {skewed_groups, big_group, "leaves site 'site-"},
      {{"a"}, no_sites, "no sites to split into"},
      {{"a", "b"}, twice, "site 'site-1' is named twice"},
      {{"a"}, bad_name, "site name: party name '../x' contains '/'"},
      {{"a", "b"}, zero_alpha, "alpha must be > 0, got 0"},
      {{"a", "b"}, no_label, "label mode needs a label column"},
      {{"a", "b"}, no_group, "column mode needs a group column"},
      {{"a", "b"}, zero_min, "min_rows must be >= 1, got 0"},
  };
  for (const Case& c : cases) {
    auto split = AssignRows(c.keys, c.options);
    EXPECT_EQ(split.status().code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(split.status().message(), HasSubstr(c.message));
  }
  EXPECT_THAT(ParseSplitMode("dirichlet").status().message(), HasSubstr("'dirichlet' is not one of label, column, iid"));
  EXPECT_EQ(*ParseSplitMode("column"), SplitMode::kColumn);
}

class SplitFileTest : public ::testing::Test {
 protected:
  std::filesystem::path Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
    return dir_ / name;
  }
  std::string Read(const std::filesystem::path& path) { return *ReadFile(path); }

  testing::TempDir dir_;
};

TEST_F(SplitFileTest, WritesHeaderRowsInOrderAndAManifest) {
  std::string csv = "id,note,y\n";
  for (int r = 0; r < 40; ++r) {
    absl::StrAppend(&csv, r, ",", r % 7 == 0 ? "\"a, \"\"quoted\"\"\nnote\"" : "plain", ",", r % 4 == 0 ? "M" : "B", "\n");
  }
  const auto input = Write("in.csv", csv);
  DataSplitOptions options = Options(SplitMode::kLabel, 3, 5);
  options.label_column = "y";
  options.alpha = 1.0;
  auto result = SplitCsvFile(input, dir_ / "out", options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->rows, 40);
  EXPECT_EQ(result->input_sha256, crypto::ToHex(crypto::Sha256(csv)));

  // Every data record appears in exactly one output, verbatim, and in input order there.
  std::multiset<int64_t> seen;
  int64_t total = 0;
  for (const SiteShare& share : result->sites) {
    const std::string text = Read(share.file);
    EXPECT_EQ(share.sha256, crypto::ToHex(crypto::Sha256(text)));
    ASSERT_TRUE(text.starts_with("id,note,y\n"));
    EXPECT_TRUE(std::is_sorted(share.rows.begin(), share.rows.end()));
    std::string expected = "id,note,y\n";
    for (int64_t r : share.rows) {
      absl::StrAppend(&expected, r, ",", r % 7 == 0 ? "\"a, \"\"quoted\"\"\nnote\"" : "plain", ",", r % 4 == 0 ? "M" : "B",
                      "\n");
      seen.insert(r);
    }
    EXPECT_EQ(text, expected);
    int64_t labelled = 0;
    for (const auto& [label, count] : share.labels) labelled += count;
    EXPECT_EQ(labelled, static_cast<int64_t>(share.rows.size()));
    total += static_cast<int64_t>(share.rows.size());
  }
  EXPECT_EQ(total, 40);
  EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), 40u);

  const nlohmann::json manifest = nlohmann::json::parse(Read(dir_ / "out" / "manifest.json"));
  EXPECT_EQ(manifest["input"]["sha256"], result->input_sha256);
  EXPECT_EQ(manifest["input"]["rows"], 40);
  EXPECT_EQ(manifest["split"]["mode"], "label");
  EXPECT_EQ(manifest["split"]["seed"], 5);
  EXPECT_EQ(manifest["split"]["alpha"], 1.0);
  ASSERT_EQ(manifest["sites"].size(), 3u);
  for (size_t s = 0; s < 3; ++s) {
    EXPECT_EQ(manifest["sites"][s]["name"], result->sites[s].name);
    EXPECT_EQ(manifest["sites"][s]["file"], result->sites[s].name + ".csv");
    EXPECT_EQ(manifest["sites"][s]["sha256"], result->sites[s].sha256);
    const auto labels = manifest["sites"][s]["labels"].get<std::map<std::string, int64_t>>();
    EXPECT_EQ(labels, result->sites[s].labels);
  }

  // Splitting again gives the same bytes.
  auto again = SplitCsvFile(input, dir_ / "again", options);
  ASSERT_TRUE(again.ok());
  for (size_t s = 0; s < 3; ++s) EXPECT_EQ(again->sites[s].sha256, result->sites[s].sha256);
}

TEST_F(SplitFileTest, KeepsCrlfLineEndsAndListsGroups) {
  const auto input = Write("in.csv", "school,score\r\n1,3\r\n2,4\r\n1,5\r\n3,6\r\n");
  DataSplitOptions options = Options(SplitMode::kColumn, 2, 1);
  options.group_column = "school";
  options.label_column.clear();
  auto result = SplitCsvFile(input, dir_ / "out", options);
  ASSERT_TRUE(result.ok()) << result.status();
  std::map<std::string, std::string> text_of_group;
  for (const SiteShare& share : result->sites) {
    EXPECT_TRUE(share.labels.empty());
    const std::string text = Read(share.file);
    EXPECT_TRUE(text.starts_with("school,score\r\n"));
    for (const std::string& group : share.groups) text_of_group[group] = text;
  }
  ASSERT_EQ(text_of_group.size(), 3u);
  EXPECT_THAT(text_of_group["1"], HasSubstr("1,3\r\n1,5\r\n"));  // group 1 together, in input order
  const nlohmann::json manifest = nlohmann::json::parse(Read(result->manifest));
  EXPECT_EQ(manifest["split"]["group_column"], "school");
  EXPECT_FALSE(manifest["split"].contains("alpha"));
  EXPECT_FALSE(manifest["sites"][0].contains("labels"));
}

TEST_F(SplitFileTest, FileErrorsNameFileLineAndColumn) {
  struct Case {
    std::string csv;
    SplitMode mode;
    std::string message;
  } cases[] = {
      {"a,b\n1,2\n", SplitMode::kLabel, "d.csv:1: label column 'y' is not in the header (a, b)"},
      {"a,y\n1,2\n", SplitMode::kColumn, "d.csv:1: group column 'g' is not in the header (a, y)"},
      {"a,y,g\n1,M,x\n\n2,B\n", SplitMode::kIid, "d.csv:4: has 2 fields, the header has 3"},
      {"a,y,g\n1,M,x\n2, ,x\n", SplitMode::kLabel, "d.csv:3: column 'y': empty label"},
      {"a,y,g\n1,M,x\n2,B,\n", SplitMode::kColumn, "d.csv:3: column 'g': empty value"},
      {"a,y,g\n1,M,x\n", SplitMode::kIid, "d.csv: 1 data row(s) cannot give 2 site(s) at least 1 row(s) each"},
      {"a,y,g\n1,\"M,x\n", SplitMode::kIid, "d.csv:2: unterminated quoted field"},
      {"", SplitMode::kIid, "d.csv: empty file"},
      {"a,y,g\n", SplitMode::kIid, "d.csv:1: no data rows after the header"},
  };
  for (const Case& c : cases) {
    auto result = SplitCsvFile(Write("d.csv", c.csv), dir_ / "out", Options(c.mode, 2));
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << c.csv;
    EXPECT_THAT(result.status().message(), HasSubstr(c.message)) << c.csv;
  }
  EXPECT_EQ(SplitCsvFile(dir_ / "absent.csv", dir_ / "out", Options(SplitMode::kIid, 2)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "out"));  // nothing written on error
}

TEST_F(SplitFileTest, RefusesANumericLabelAndOverwritingTheInput) {
  std::string csv = "x,y\n";
  for (int r = 0; r < 300; ++r) absl::StrAppend(&csv, r, ",", r * 0.5, "\n");
  auto numeric = SplitCsvFile(Write("n.csv", csv), dir_ / "out", Options(SplitMode::kIid, 2));
  EXPECT_THAT(numeric.status().message(),
              HasSubstr("label column 'y' has 300 distinct values (at most 256): it looks like a number"));

  const auto input = Write("site-1.csv", "x,y\n1,a\n2,b\n");
  auto clobber = SplitCsvFile(input, dir_.path(), Options(SplitMode::kIid, 2));
  EXPECT_THAT(clobber.status().message(), HasSubstr("would overwrite the input"));
  EXPECT_EQ(Read(input), "x,y\n1,a\n2,b\n");
}

TEST(DataSplitTest, ShippedWdbcByLabelAndExamsBySchool) {
  testing::TempDir dir;
  DataSplitOptions wdbc = Options(SplitMode::kLabel, 3, 42);
  wdbc.sites = {"hospital-a", "hospital-b", "hospital-c"};
  wdbc.label_column = "diagnosis";
  wdbc.alpha = 1.0;
  auto hospitals = SplitCsvFile(kSource / "data/wdbc.csv", dir / "wdbc", wdbc);
  ASSERT_TRUE(hospitals.ok()) << hospitals.status();
  EXPECT_EQ(hospitals->rows, 569);
  int64_t malignant = 0;
  for (const SiteShare& share : hospitals->sites) {
    EXPECT_GE(share.rows.size(), 189u);
    malignant += share.labels.count("M") ? share.labels.at("M") : 0;
  }
  EXPECT_EQ(malignant, 212);

  DataSplitOptions exams = Options(SplitMode::kColumn, 5, 42);
  exams.group_column = "school";
  exams.label_column = "above_mean";
  exams.min_rows = 500;
  auto schools = SplitCsvFile(kSource / "data/gpl/exam_london_schools.csv", dir / "schools", exams);
  ASSERT_TRUE(schools.ok()) << schools.status();
  EXPECT_EQ(schools->rows, 4059);
  std::set<std::string> all_groups;
  size_t group_count = 0;
  for (const SiteShare& share : schools->sites) {
    EXPECT_GE(share.rows.size(), 500u);
    group_count += share.groups.size();
    all_groups.insert(share.groups.begin(), share.groups.end());
  }
  EXPECT_EQ(all_groups.size(), 65u);  // 65 schools, each at one site
  EXPECT_EQ(group_count, 65u);
}

}  // namespace
}  // namespace fedattn::agent
