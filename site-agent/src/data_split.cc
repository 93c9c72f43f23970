#include "fedattn/agent/data_split.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <numeric>
#include <random>
#include <set>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fedattn/common/csv.h"
#include "fedattn/common/files.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/crypto/certificate.h"
#include "fedattn/crypto/digest.h"
#include "nlohmann/json.hpp"

namespace fedattn::agent {
namespace {

// A label column with more distinct values than this is a number (a regression target or an
// id), not classes: label mode and the per-site histograms would be meaningless.
constexpr size_t kMaxLabelValues = 256;

using Rng = std::mt19937_64;  // its output sequence is fixed by the C++ standard

// Uniform integer in [0, n): rejection sampling, the same on every standard library.
uint64_t UniformBelow(Rng& rng, uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = rng(); while (x >= limit);
  return x % n;
}

// Uniform double in the open interval (0, 1).
double UniformOpen(Rng& rng) { return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53; }

double StandardNormal(Rng& rng) {  // Box-Muller
  const double u1 = UniformOpen(rng), u2 = UniformOpen(rng);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

// log of a Gamma(shape, 1) draw: Marsaglia & Tsang 2000 (ACM TOMS 26(3)); for shape < 1 the
// boost G(a) = G(a+1)·U^(1/a), kept in logs because alpha·p_k can be tiny enough to underflow.
double LogGammaDraw(double shape, Rng& rng) {
  if (shape < 1.0) return LogGammaDraw(shape + 1.0, rng) + std::log(UniformOpen(rng)) / shape;
  const double d = shape - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x, v;
    do {
      x = StandardNormal(rng);
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = UniformOpen(rng);
    if (u < 1.0 - 0.0331 * x * x * x * x || std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) {
      return std::log(d) + std::log(v);
    }
  }
}

// The log of a weight that is zero for every practical purpose but stays finite when shifted.
constexpr double kLogZero = -1e300;

double LogSumExp(const std::vector<double>& logs) {
  const double top = *std::max_element(logs.begin(), logs.end());
  double sum = 0;
  for (double l : logs) sum += std::exp(l - top);
  return top + std::log(sum);
}

// log q for q ~ Dir(alpha·p), by normalised Gamma draws; alpha = +inf gives log p.
std::vector<double> LogDirichletDraw(double alpha, const std::vector<double>& p, Rng& rng) {
  std::vector<double> logs(p.size());
  if (std::isinf(alpha)) {
    for (size_t k = 0; k < p.size(); ++k) logs[k] = std::log(p[k]);
    return logs;
  }
  for (size_t k = 0; k < p.size(); ++k) logs[k] = LogGammaDraw(alpha * p[k], rng);
  if (!std::isfinite(*std::max_element(logs.begin(), logs.end()))) {
    // Every draw underflowed (alpha near 0): the limit, one class picked with probability p_k.
    double u = UniformOpen(rng);
    size_t k = 0;
    while (k + 1 < p.size() && u >= p[k]) u -= p[k++];
    std::fill(logs.begin(), logs.end(), kLogZero);
    logs[k] = 0;
    return logs;
  }
  const double total = LogSumExp(logs);
  for (double& l : logs) l = std::max(l - total, kLogZero);
  return logs;
}

// Iterative proportional fitting (Deming & Stephan 1940), in logs: rescales the rows and columns
// of exp(log_x) until row s sums to row_sums[s] and column k to col_sums[k]. The result is the
// table with those sums nearest the start in Kullback-Leibler divergence (Csiszar 1975).
void FitMargins(std::vector<std::vector<double>>& log_x, const std::vector<double>& row_sums,
                const std::vector<double>& col_sums) {
  std::vector<double> column(log_x.size());
  for (int iteration = 0; iteration < 10000; ++iteration) {
    double worst = 0;
    for (size_t s = 0; s < log_x.size(); ++s) {
      const double shift = std::log(row_sums[s]) - LogSumExp(log_x[s]);
      worst = std::max(worst, std::abs(shift));
      for (double& v : log_x[s]) v += shift;
    }
    for (size_t k = 0; k < col_sums.size(); ++k) {
      for (size_t s = 0; s < log_x.size(); ++s) column[s] = log_x[s][k];
      const double shift = std::log(col_sums[k]) - LogSumExp(column);
      worst = std::max(worst, std::abs(shift));
      for (size_t s = 0; s < log_x.size(); ++s) log_x[s][k] += shift;
    }
    if (worst < 1e-12) return;
  }
}

template <typename T>
void Shuffle(std::vector<T>& values, Rng& rng) {  // Fisher-Yates
  for (size_t i = values.size(); i > 1; --i) std::swap(values[i - 1], values[UniformBelow(rng, i)]);
}

std::vector<int> SeededOrder(size_t n, Rng& rng) {
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  Shuffle(order, rng);
  return order;
}

// Splits `total` units over classes in proportion to `weights`, never giving class k more than
// caps[k] (sum of caps >= total). Largest remainder (Hamilton) rounding, ties to the lower index;
// what a capped class cannot take is apportioned again over the others by the same weights.
std::vector<int64_t> Apportion(int64_t total, const std::vector<double>& weights, const std::vector<int64_t>& caps) {
  const size_t n = weights.size();
  std::vector<int64_t> counts(n, 0);
  while (total > 0) {
    std::vector<size_t> open;  // never empty while total > 0, as the caps sum to >= total
    double weight_sum = 0;
    for (size_t k = 0; k < n; ++k) {
      if (counts[k] < caps[k]) {
        open.push_back(k);
        weight_sum += weights[k];
      }
    }
    // Only classes the draw gave no weight are left: fill them by what they have.
    const bool by_spare = !(weight_sum > 0);
    if (by_spare) {
      weight_sum = 0;
      for (size_t k : open) weight_sum += static_cast<double>(caps[k] - counts[k]);
    }
    std::vector<int64_t> give(n, 0);
    // (remainder in units of 1e-9, so that equal shares computed differently still tie; class)
    std::vector<std::pair<int64_t, size_t>> remainders;
    int64_t given = 0;
    for (size_t k : open) {
      const double w = by_spare ? static_cast<double>(caps[k] - counts[k]) : weights[k];
      const double share = static_cast<double>(total) * w / weight_sum;
      give[k] = std::min<int64_t>(static_cast<int64_t>(std::floor(share)), total);
      given += give[k];
      remainders.emplace_back(std::llround((share - std::floor(share)) * 1e9), k);
    }
    std::sort(remainders.begin(), remainders.end(), [](const auto& a, const auto& b) {
      if (a.first != b.first) return a.first > b.first;
      return a.second < b.second;
    });
    for (size_t i = 0; given < total; i = (i + 1) % remainders.size()) {
      ++give[remainders[i].second];
      ++given;
    }
    int64_t placed = 0;
    for (size_t k : open) {
      const int64_t take = std::min(give[k], caps[k] - counts[k]);
      counts[k] += take;
      placed += take;
    }
    total -= placed;  // > 0 only if a cap bound, and then that class is closed next pass
  }
  return counts;
}

std::vector<int64_t> EqualSizes(int64_t rows, size_t sites) {
  std::vector<int64_t> sizes(sites, rows / static_cast<int64_t>(sites));
  for (int64_t i = 0; i < rows % static_cast<int64_t>(sites); ++i) ++sizes[i];
  return sizes;
}

std::vector<int> AssignIid(int64_t rows, size_t sites, Rng& rng) {
  std::vector<int64_t> order(rows);
  std::iota(order.begin(), order.end(), 0);
  Shuffle(order, rng);
  std::vector<int> site_of(rows);
  int64_t next = 0;
  const std::vector<int64_t> sizes = EqualSizes(rows, sites);
  for (size_t s = 0; s < sites; ++s) {
    for (int64_t i = 0; i < sizes[s]; ++i) site_of[order[next++]] = static_cast<int>(s);
  }
  return site_of;
}

std::vector<int> AssignByLabel(const std::vector<std::string>& labels, size_t sites, double alpha, Rng& rng) {
  const int64_t rows = static_cast<int64_t>(labels.size());
  std::map<std::string, std::vector<int64_t>> by_class;  // sorted: class order is the values' order
  for (int64_t r = 0; r < rows; ++r) by_class[labels[r]].push_back(r);
  const std::vector<int> service = SeededOrder(sites, rng);
  std::vector<std::vector<int64_t>> queues;
  std::vector<double> prior, class_rows;
  for (auto& [value, members] : by_class) {
    Shuffle(members, rng);
    class_rows.push_back(static_cast<double>(members.size()));
    prior.push_back(class_rows.back() / static_cast<double>(rows));
    queues.push_back(std::move(members));
  }
  const size_t classes = queues.size();
  const std::vector<int64_t> sizes = EqualSizes(rows, sites);

  // Each site's wish, n_s·q_s, fitted to the classes' real sizes.
  std::vector<std::vector<double>> log_x(sites);
  std::vector<double> site_rows(sites);
  for (size_t s = 0; s < sites; ++s) {
    log_x[s] = LogDirichletDraw(alpha, prior, rng);
    site_rows[s] = static_cast<double>(sizes[s]);
  }
  FitMargins(log_x, site_rows, class_rows);

  // Round site by site. A site's weights are its fitted counts scaled to what is left of each
  // class for the sites still to serve, so rounding never piles up on the last site served.
  std::vector<int64_t> left(classes), taken(classes, 0);
  std::vector<double> pending(classes, 0.0);  // fitted counts of the sites still to serve
  for (size_t k = 0; k < classes; ++k) {
    left[k] = static_cast<int64_t>(queues[k].size());
    for (size_t s = 0; s < sites; ++s) pending[k] += std::exp(log_x[s][k]);
  }
  std::vector<int> site_of(rows, -1);
  for (int s : service) {
    std::vector<double> weights(classes);
    for (size_t k = 0; k < classes; ++k) {
      const double fitted = std::exp(log_x[s][k]);
      weights[k] = pending[k] > 0 ? fitted * static_cast<double>(left[k]) / pending[k] : 0.0;
      pending[k] = std::max(pending[k] - fitted, 0.0);
    }
    const std::vector<int64_t> counts = Apportion(sizes[s], weights, left);
    for (size_t k = 0; k < classes; ++k) {
      for (int64_t i = 0; i < counts[k]; ++i) site_of[queues[k][taken[k]++]] = s;
      left[k] -= counts[k];
    }
  }
  return site_of;
}

absl::StatusOr<std::vector<int>> AssignByGroup(const std::vector<std::string>& groups, const DataSplitOptions& options,
                                               Rng& rng) {
  const size_t sites = options.sites.size();
  std::vector<std::string> names;  // in order of first appearance
  std::map<std::string, size_t> index;
  std::vector<int64_t> group_of(groups.size());
  std::vector<int64_t> size;
  for (size_t r = 0; r < groups.size(); ++r) {
    auto [it, added] = index.emplace(groups[r], names.size());
    if (added) {
      names.push_back(groups[r]);
      size.push_back(0);
    }
    group_of[r] = static_cast<int64_t>(it->second);
    ++size[it->second];
  }
  if (names.size() < sites) {
    return absl::InvalidArgumentError(absl::StrCat("column '", options.group_column, "' has ", names.size(),
                                                   " distinct value(s), fewer than the ", sites,
                                                   " sites: every site needs a group of its own"));
  }
  std::vector<int> order = SeededOrder(names.size(), rng);  // breaks ties between equal groups
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return size[a] > size[b]; });
  const std::vector<int> tie_rank = SeededOrder(sites, rng);
  std::vector<int64_t> load(sites, 0);
  std::vector<int> site_of_group(names.size());
  for (int g : order) {
    size_t best = 0;
    for (size_t s = 1; s < sites; ++s) {
      if (load[s] < load[best] || (load[s] == load[best] && tie_rank[s] < tie_rank[best])) best = s;
    }
    site_of_group[g] = static_cast<int>(best);
    load[best] += size[g];
  }
  for (size_t s = 0; s < sites; ++s) {
    if (load[s] < options.min_rows) {
      return absl::InvalidArgumentError(absl::StrCat(
          "grouping by '", options.group_column, "' leaves site '", options.sites[s], "' with ", load[s],
          " row(s), fewer than --min-rows ", options.min_rows, " (the largest group has ", size[order[0]],
          " of ", groups.size(), " rows): use fewer sites or a smaller minimum"));
    }
  }
  std::vector<int> site_of(groups.size());
  for (size_t r = 0; r < groups.size(); ++r) site_of[r] = site_of_group[group_of[r]];
  return site_of;
}

std::string Hex(const crypto::Sha256Digest& digest) { return crypto::ToHex(digest); }

absl::Status LineError(absl::string_view source, int64_t line, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(source, ":", line, ": ", message));
}

}  // namespace

absl::string_view SplitModeName(SplitMode mode) {
  switch (mode) {
    case SplitMode::kIid: return "iid";
    case SplitMode::kLabel: return "label";
    case SplitMode::kColumn: return "column";
  }
  return "?";
}

absl::StatusOr<SplitMode> ParseSplitMode(absl::string_view name) {
  for (SplitMode mode : {SplitMode::kIid, SplitMode::kLabel, SplitMode::kColumn}) {
    if (name == SplitModeName(mode)) return mode;
  }
  return absl::InvalidArgumentError(absl::StrCat("split mode '", name, "' is not one of label, column, iid"));
}

absl::Status DataSplitOptions::Validate() const {
  if (sites.empty()) return absl::InvalidArgumentError("no sites to split into");
  std::set<std::string> seen;
  for (const std::string& site : sites) {
    const absl::Status name = crypto::ValidatePartyName(site);
    if (!name.ok()) return absl::InvalidArgumentError(absl::StrCat("site name: ", name.message()));
    if (!seen.insert(site).second) return absl::InvalidArgumentError(absl::StrCat("site '", site, "' is named twice"));
  }
  if (min_rows < 1) return absl::InvalidArgumentError(absl::StrCat("min_rows must be >= 1, got ", min_rows));
  if (mode == SplitMode::kLabel) {
    if (label_column.empty()) return absl::InvalidArgumentError("label mode needs a label column");
    if (!(alpha > 0)) return absl::InvalidArgumentError(absl::StrCat("alpha must be > 0, got ", alpha));
  }
  if (mode == SplitMode::kColumn && group_column.empty()) {
    return absl::InvalidArgumentError("column mode needs a group column");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int>> AssignRows(const std::vector<std::string>& keys, const DataSplitOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  const int64_t rows = static_cast<int64_t>(keys.size());
  const size_t sites = options.sites.size();
  const int64_t needed = static_cast<int64_t>(sites) * options.min_rows;
  if (rows < needed) {
    return absl::InvalidArgumentError(absl::StrCat(rows, " data row(s) cannot give ", sites, " site(s) at least ",
                                                   options.min_rows, " row(s) each (that needs ", needed, ")"));
  }
  Rng rng(options.seed);
  switch (options.mode) {
    case SplitMode::kIid: return AssignIid(rows, sites, rng);
    case SplitMode::kLabel: return AssignByLabel(keys, sites, options.alpha, rng);
    case SplitMode::kColumn: return AssignByGroup(keys, options, rng);
  }
  return absl::InternalError("unknown split mode");
}

absl::StatusOr<DataSplitResult> SplitCsvFile(const std::filesystem::path& input, const std::filesystem::path& out_dir,
                                             const DataSplitOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  const std::string source = input.string();
  ASSIGN_OR_RETURN(const std::string text, ReadFile(input));
  ASSIGN_OR_RETURN(const std::vector<CsvRecord> records, ParseCsvRecords(text, source));
  if (records.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": empty file (no header row)"));
  if (records.size() == 1) return LineError(source, 1, "no data rows after the header");
  const CsvRecord& header = records[0];
  auto column = [&](const std::string& name, absl::string_view role) -> absl::StatusOr<size_t> {
    for (size_t i = 0; i < header.fields.size(); ++i) {
      if (header.fields[i] == name) return i;
    }
    return LineError(source, header.line, absl::StrCat(role, " column '", name, "' is not in the header (",
                                                       absl::StrJoin(header.fields, ", "), ")"));
  };
  const bool has_label = !options.label_column.empty();
  const bool by_group = options.mode == SplitMode::kColumn;
  size_t label_index = 0, group_index = 0;
  if (has_label) {
    ASSIGN_OR_RETURN(label_index, column(options.label_column, "label"));
  }
  if (by_group) {
    ASSIGN_OR_RETURN(group_index, column(options.group_column, "group"));
  }

  const int64_t rows = static_cast<int64_t>(records.size()) - 1;
  std::vector<std::string> labels, groups;
  std::set<std::string> label_values;
  for (int64_t r = 0; r < rows; ++r) {
    const CsvRecord& record = records[r + 1];
    if (record.fields.size() != header.fields.size()) {
      return LineError(source, record.line, absl::StrCat("has ", record.fields.size(), " fields, the header has ",
                                                         header.fields.size()));
    }
    if (has_label) {
      std::string value(absl::StripAsciiWhitespace(record.fields[label_index]));
      if (value.empty() && options.mode == SplitMode::kLabel) {
        return LineError(source, record.line,
                         absl::StrCat("column '", options.label_column, "': empty label (every row needs a class)"));
      }
      label_values.insert(value);
      labels.push_back(std::move(value));
    }
    if (by_group) {
      std::string value(absl::StripAsciiWhitespace(record.fields[group_index]));
      if (value.empty()) {
        return LineError(source, record.line,
                         absl::StrCat("column '", options.group_column, "': empty value (every row needs a group)"));
      }
      groups.push_back(std::move(value));
    }
  }
  if (label_values.size() > kMaxLabelValues) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": label column '", options.label_column, "' has ", label_values.size(),
        " distinct values (at most ", kMaxLabelValues, "): it looks like a number, not classes"));
  }

  std::vector<std::string> keys;
  switch (options.mode) {
    case SplitMode::kIid: keys.resize(rows); break;  // only the count matters
    case SplitMode::kLabel: keys = labels; break;
    case SplitMode::kColumn: keys = groups; break;
  }
  auto assigned = AssignRows(keys, options);
  if (!assigned.ok()) return absl::InvalidArgumentError(absl::StrCat(source, ": ", assigned.status().message()));

  DataSplitResult result;
  result.input = input;
  result.input_sha256 = Hex(crypto::Sha256(text));
  result.rows = rows;
  result.manifest = out_dir / "manifest.json";
  auto overwrites_input = [&](const std::filesystem::path& output) -> absl::Status {
    std::error_code in_ec, out_ec;
    const auto a = std::filesystem::weakly_canonical(input, in_ec), b = std::filesystem::weakly_canonical(output, out_ec);
    if (!in_ec && !out_ec && a == b) {
      return absl::InvalidArgumentError(absl::StrCat(output.string(), " would overwrite the input ", source,
                                                     ": choose another output folder"));
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(overwrites_input(result.manifest));
  for (const std::string& name : options.sites) {
    SiteShare share;
    share.name = name;
    share.file = out_dir / absl::StrCat(name, ".csv");
    RETURN_IF_ERROR(overwrites_input(share.file));
    result.sites.push_back(std::move(share));
  }
  for (int64_t r = 0; r < rows; ++r) {
    SiteShare& share = result.sites[(*assigned)[r]];
    share.rows.push_back(r);
    if (has_label) ++share.labels[labels[r]];
    if (by_group && std::find(share.groups.begin(), share.groups.end(), groups[r]) == share.groups.end()) {
      share.groups.push_back(groups[r]);
    }
  }

  // Lines end as the header's does; the header's bytes start where a byte-order mark ends.
  const size_t header_end = static_cast<size_t>(header.raw.data() - text.data()) + header.raw.size();
  const std::string eol = text.compare(header_end, 2, "\r\n") == 0 ? "\r\n" : "\n";
  RETURN_IF_ERROR(EnsureDirectory(out_dir));
  for (SiteShare& share : result.sites) {
    std::string out = absl::StrCat(header.raw, eol);
    for (int64_t r : share.rows) absl::StrAppend(&out, records[r + 1].raw, eol);
    share.sha256 = Hex(crypto::Sha256(out));
    RETURN_IF_ERROR(WriteFileAtomic(share.file, out));
  }

  nlohmann::json manifest;
  manifest["format"] = "fedattn-data-split/1";
  manifest["input"] = {{"path", source}, {"sha256", result.input_sha256}, {"rows", rows}};
  nlohmann::json split = {{"mode", std::string(SplitModeName(options.mode))},
                          {"seed", options.seed},
                          {"min_rows", options.min_rows}};
  if (has_label) split["label_column"] = options.label_column;
  if (by_group) split["group_column"] = options.group_column;
  if (options.mode == SplitMode::kLabel) {
    split["alpha"] = std::isinf(options.alpha) ? nlohmann::json("inf") : nlohmann::json(options.alpha);
  }
  manifest["split"] = split;
  manifest["sites"] = nlohmann::json::array();
  for (const SiteShare& share : result.sites) {
    nlohmann::json site = {{"name", share.name},
                           {"file", share.file.filename().string()},
                           {"rows", static_cast<int64_t>(share.rows.size())},
                           {"sha256", share.sha256}};
    if (has_label) site["labels"] = share.labels;
    if (by_group) site["groups"] = share.groups;
    manifest["sites"].push_back(std::move(site));
  }
  RETURN_IF_ERROR(WriteFileAtomic(result.manifest, manifest.dump(2) + "\n"));
  return result;
}

}  // namespace fedattn::agent
