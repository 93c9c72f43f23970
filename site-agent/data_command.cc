#include "data_command.h"

#include <iostream>
#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fedattn/agent/data_split.h"
#include "fedattn/common/files.h"

namespace fedattn::agent {
namespace {

struct SplitFlags {
  std::string input, out, mode;
  std::vector<std::string> sites;
  int num_sites = 0;
  std::string label_column, group_column;
  double alpha = DataSplitOptions().alpha;
  uint64_t seed = DataSplitOptions().seed;
  int64_t min_rows = DataSplitOptions().min_rows;
  bool json = false;
};

// Left-aligned columns, two spaces apart.
void PrintTable(const std::vector<std::vector<std::string>>& rows, std::ostream& out) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()), 0);
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(width[c] - row[c].size() + 2, ' ');
    }
    line.erase(line.find_last_not_of(' ') + 1);
    out << line << "\n";
  }
}

void PrintResult(const DataSplitResult& result, const DataSplitOptions& options, std::ostream& out) {
  std::string how;
  switch (options.mode) {
    case SplitMode::kIid: how = "at random (iid)"; break;
    case SplitMode::kLabel:
      how = absl::StrCat("by label '", options.label_column, "' (Dirichlet alpha ", options.alpha, ")");
      break;
    case SplitMode::kColumn: how = absl::StrCat("by column '", options.group_column, "' (whole groups)"); break;
  }
  out << result.input.string() << ": " << result.rows << " rows (sha256 " << result.input_sha256.substr(0, 16)
      << "…) split " << how << ", seed " << options.seed << "\n\n";
  std::set<std::string> labels;
  for (const SiteShare& share : result.sites) {
    for (const auto& [label, count] : share.labels) labels.insert(label);
  }
  const bool by_group = options.mode == SplitMode::kColumn;
  std::vector<std::vector<std::string>> table;
  std::vector<std::string> head = {"SITE", "ROWS"};
  if (by_group) head.push_back("GROUPS");
  for (const std::string& label : labels) head.push_back(label.empty() ? "(empty)" : label);
  head.push_back("FILE");
  table.push_back(head);
  std::map<std::string, int64_t> total_labels;
  size_t total_groups = 0;
  for (const SiteShare& share : result.sites) {
    std::vector<std::string> row = {share.name, absl::StrCat(share.rows.size())};
    if (by_group) row.push_back(absl::StrCat(share.groups.size()));
    total_groups += share.groups.size();
    for (const std::string& label : labels) {
      const auto it = share.labels.find(label);
      const int64_t count = it == share.labels.end() ? 0 : it->second;
      total_labels[label] += count;
      row.push_back(absl::StrCat(count));
    }
    row.push_back(share.file.string());
    table.push_back(std::move(row));
  }
  std::vector<std::string> total = {"total", absl::StrCat(result.rows)};
  if (by_group) total.push_back(absl::StrCat(total_groups));
  for (const std::string& label : labels) total.push_back(absl::StrCat(total_labels[label]));
  total.push_back("");
  table.push_back(std::move(total));
  PrintTable(table, out);
  out << "\nmanifest: " << result.manifest.string() << "\n";
}

int RunSplit(const SplitFlags& flags, const CLI::App& split) {
  auto fail = [](absl::string_view message) {
    std::cerr << "fedattn-agent data split: " << message << "\n";
    return 1;
  };
  DataSplitOptions options;
  auto mode = ParseSplitMode(flags.mode);
  if (!mode.ok()) return fail(mode.status().message());
  options.mode = *mode;
  if (flags.sites.empty() == (flags.num_sites == 0)) return fail("give either --sites a,b,c or --num-sites N");
  options.sites = flags.sites;
  for (int s = 0; s < flags.num_sites; ++s) options.sites.push_back(absl::StrCat("site-", s + 1));
  if (split.count("--alpha") > 0 && options.mode != SplitMode::kLabel) return fail("--alpha applies to --mode label only");
  if (split.count("--group-column") > 0 && options.mode != SplitMode::kColumn) {
    return fail("--group-column applies to --mode column only");
  }
  options.label_column = flags.label_column;
  options.group_column = flags.group_column;
  options.alpha = flags.alpha;
  options.seed = flags.seed;
  options.min_rows = flags.min_rows;
  if (options.mode == SplitMode::kLabel && options.label_column.empty()) return fail("--mode label needs --label-column");
  if (options.mode == SplitMode::kColumn && options.group_column.empty()) return fail("--mode column needs --group-column");
  auto result = SplitCsvFile(flags.input, flags.out, options);
  if (!result.ok()) return fail(result.status().message());
  if (flags.json) {
    // The manifest already says everything the table shows, in JSON.
    auto manifest = ReadFile(result->manifest);
    if (!manifest.ok()) return fail(manifest.status().message());
    std::cout << *manifest;
    if (!manifest->empty() && manifest->back() != '\n') std::cout << "\n";
    return 0;
  }
  PrintResult(*result, options, std::cout);
  return 0;
}

}  // namespace

void AddDataCommand(CLI::App& app) {
  CLI::App* data = app.add_subcommand("data", "Work with data sets (split one across sites)");
  data->require_subcommand(1);
  auto flags = std::make_shared<SplitFlags>();
  CLI::App* split = data->add_subcommand(
      "split", "Split one CSV into one CSV per site (label skew, whole groups by a column, or iid), with a manifest");
  split->add_option("--input", flags->input, "CSV with a header row")->required()->check(CLI::ExistingFile);
  split->add_option("--out", flags->out, "Folder for <site>.csv and manifest.json (created if missing)")->required();
  split->add_option("--sites", flags->sites, "Site names, comma-separated (also each output's file name)")
      ->delimiter(',');
  split->add_option("--num-sites", flags->num_sites, "Instead of --sites: N sites named site-1 … site-N")
      ->check(CLI::Range(1, 100000));
  split->add_option("--mode", flags->mode, "label (Dirichlet label skew), column (whole groups), or iid")->required();
  split->add_option("--label-column", flags->label_column,
                    "Class column: required by label mode; otherwise only counted per site");
  split->add_option("--group-column", flags->group_column, "Column mode: rows with equal values stay together");
  split->add_option("--alpha", flags->alpha, "Label mode: Dirichlet concentration (> 0; small = skewed, inf = iid-like)")
      ->capture_default_str();
  split->add_option("--seed", flags->seed, "Random seed: the same seed gives the same split")->capture_default_str();
  split->add_option("--min-rows", flags->min_rows, "Every site gets at least this many rows")->capture_default_str();
  split->add_flag("--json", flags->json, "Print the manifest (JSON: rows and labels per site) instead of the table");
  split->callback([flags, split] {
    if (RunSplit(*flags, *split) != 0) throw CLI::RuntimeError(1);
    throw CLI::Success();  // done inside parse(); the agent itself must not start
  });
}

}  // namespace fedattn::agent
