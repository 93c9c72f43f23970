#include "fedattn/models/data_schema.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/config/yaml_reader.h"

namespace fedattn::models {
namespace {

int64_t IndexOf(const std::vector<std::string>& values, absl::string_view value) {
  auto it = std::find(values.begin(), values.end(), value);
  return it == values.end() ? -1 : it - values.begin();
}

}  // namespace

absl::Status TabularSchema::Validate() const {
  if (features.empty()) return absl::InvalidArgumentError("schema has no features");
  if (label.empty()) return absl::InvalidArgumentError("schema has no label column");
  std::vector<std::string> names = {label};
  if (!id_column.empty()) names.push_back(id_column);
  for (const FeatureSchema& feature : features) {
    if (IndexOf(names, feature.name) >= 0) {
      return absl::InvalidArgumentError(absl::StrCat("column '", feature.name, "' is used twice"));
    }
    names.push_back(feature.name);
    if (feature.categorical && feature.categories.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("categorical feature '", feature.name, "' lists no categories"));
    }
    if (feature.categorical && (feature.missing == MissingPolicy::kMean || feature.missing == MissingPolicy::kMedian)) {
      return absl::InvalidArgumentError(
          absl::StrCat("categorical feature '", feature.name, "': missing must be error or most_frequent"));
    }
    if (!feature.categorical && feature.missing == MissingPolicy::kMostFrequent) {
      return absl::InvalidArgumentError(
          absl::StrCat("numeric feature '", feature.name, "': missing must be error, mean or median"));
    }
  }
  if (!regression) {
    if (classes.size() < 2) return absl::InvalidArgumentError("a classification label needs at least 2 classes");
    if (!positive_class.empty() && IndexOf(classes, positive_class) < 0) {
      return absl::InvalidArgumentError(absl::StrCat("positive class '", positive_class, "' is not a class"));
    }
  }
  return absl::OkStatus();
}

int64_t TabularSchema::num_numeric() const {
  return std::count_if(features.begin(), features.end(), [](const FeatureSchema& f) { return !f.categorical; });
}

std::vector<int64_t> TabularSchema::cardinalities() const {
  std::vector<int64_t> out;
  for (const FeatureSchema& feature : features) {
    if (feature.categorical) out.push_back(static_cast<int64_t>(feature.categories.size()));
  }
  return out;
}

void TabularSchema::ConfigureModel(TabularTransformerOptions* options) const {
  options->num_numeric(num_numeric()).cardinalities(cardinalities()).regression(regression);
  if (!regression) options->num_classes(static_cast<int64_t>(classes.size()));
}

void ReadTabularSchema(config::MapReader& top, TabularSchema* out) {
  TabularSchema& schema = *out;
  {
    config::MapReader label = top.Map("label");
    label.Required("column", &schema.label);
    std::string task = "classification";
    label.OptionalEnum("task", &task, {"classification", "regression"});
    schema.regression = task == "regression";
    label.Optional("classes", &schema.classes);
    label.Optional("positive", &schema.positive_class);
    if (schema.regression && label.Has("classes")) label.Error("classes", "a regression label has no classes");
    if (!schema.regression && schema.classes.size() < 2) label.Error("classes", "list at least 2 classes");
  }
  top.Optional("id_column", &schema.id_column);
  for (config::MapReader& entry : top.MapList("features")) {
    FeatureSchema feature;
    entry.Required("name", &feature.name);
    std::string kind = "numeric";
    entry.OptionalEnum("kind", &kind, {"numeric", "categorical"});
    feature.categorical = kind == "categorical";
    std::string missing = "error";
    entry.OptionalEnum("missing", &missing, {"error", "mean", "median", "most_frequent"});
    feature.missing = missing == "mean"            ? MissingPolicy::kMean
                      : missing == "median"        ? MissingPolicy::kMedian
                      : missing == "most_frequent" ? MissingPolicy::kMostFrequent
                                                   : MissingPolicy::kError;
    if (feature.categorical) {
      entry.Optional("categories", &feature.categories);
    } else if (entry.Has("categories")) {
      entry.Error("categories", "only categorical features have categories");
    }
    schema.features.push_back(std::move(feature));
  }
}

absl::StatusOr<TabularSchema> LoadTabularSchema(const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(config::YamlDocument doc, config::YamlDocument::Load(path));
  TabularSchema schema;
  {
    config::MapReader root = doc.Root();
    config::MapReader top = root.Map("schema");
    ReadTabularSchema(top, &schema);
  }
  RETURN_IF_ERROR(doc.Finish());
  if (absl::Status status = schema.Validate(); !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": schema: ", status.message()));
  }
  return schema;
}

absl::Status TextDataOptions::Validate() const {
  if (text_column.empty() || label_column.empty()) {
    return absl::InvalidArgumentError("text_column and label_column are required");
  }
  if (classes.size() < 2) return absl::InvalidArgumentError("list at least 2 classes");
  return absl::OkStatus();
}

}  // namespace fedattn::models
