#include "fedattn/coordinator/global_model.h"

#include <cstring>
#include <map>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fedattn/common/files.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/tensor/model_digest.h"
#include "fedattn/tensor/safetensors.h"

namespace fedattn::coordinator {
namespace {

std::span<const uint8_t> Bytes(const float* data, int64_t count) {
  return {reinterpret_cast<const uint8_t*>(data), static_cast<size_t>(count) * sizeof(float)};
}

}  // namespace

absl::StatusOr<GlobalModel> GlobalModel::FromTensors(const models::ModelSpec& spec,
                                                     std::span<const TensorBuffer> tensors,
                                                     absl::string_view source) {
  std::map<std::string, const TensorBuffer*> by_name;
  for (const TensorBuffer& tensor : tensors) {
    if (!by_name.emplace(tensor.name, &tensor).second) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": tensor '", tensor.name, "' appears twice"));
    }
  }
  GlobalModel model;
  int64_t total = 0;
  for (const models::TensorSpec& tensor : spec.tensors) {
    if (tensor.dtype != DType::kF32) {
      return absl::InvalidArgumentError(absl::StrCat("model tensor '", tensor.name, "' is ", DTypeName(tensor.dtype),
                                                     "; the coordinator aggregates float32 models only"));
    }
    model.entries_.push_back(Entry{tensor, total, {}});
    total += tensor.numel();
  }
  model.values_.resize(static_cast<size_t>(total));
  for (const Entry& entry : model.entries_) {
    const auto it = by_name.find(entry.spec.name);
    if (it == by_name.end()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": tensor '", entry.spec.name,
                                                     "' of the job's model is missing"));
    }
    const TensorBuffer& tensor = *it->second;
    if (tensor.dtype != DType::kF32 || tensor.shape != entry.spec.shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": tensor '", tensor.name, "' is ", DTypeName(tensor.dtype), " [", absl::StrJoin(tensor.shape, ","),
          "], the job's model needs F32 [", absl::StrJoin(entry.spec.shape, ","), "]"));
    }
    if (tensor.data.size() != static_cast<size_t>(entry.spec.numel()) * sizeof(float)) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": tensor '", tensor.name, "' has ",
                                                     tensor.data.size(), " bytes"));
    }
    std::memcpy(model.values_.data() + entry.offset, tensor.data.data(), tensor.data.size());
    by_name.erase(it);
  }
  if (!by_name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": tensor '", by_name.begin()->first,
                                                   "' is not part of the job's model"));
  }
  for (const Entry& entry : model.entries_) {
    if (!entry.spec.trainable) continue;
    if (!model.trainable_ranges_.empty() &&
        model.trainable_ranges_.back().first + model.trainable_ranges_.back().second == entry.offset) {
      model.trainable_ranges_.back().second += entry.spec.numel();
    } else {
      model.trainable_ranges_.emplace_back(entry.offset, entry.spec.numel());
    }
    model.num_trainable_ += entry.spec.numel();
  }
  model.Rehash();
  return model;
}

absl::StatusOr<GlobalModel> GlobalModel::Load(const models::ModelSpec& spec, const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(SafetensorsFile file, LoadSafetensors(path));
  return FromTensors(spec, file.tensors, path.string());
}

absl::Status GlobalModel::Save(const std::filesystem::path& path) const {
  // safetensors: 8-byte little-endian header length, JSON header, then the data in offset order.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  header["__metadata__"] = {{"format", "pt"}, {"fedattn.digest", crypto::ToHex(digest_)}};
  for (const Entry& entry : entries_) {
    const int64_t begin = entry.offset * static_cast<int64_t>(sizeof(float));
    header[entry.spec.name] = {{"dtype", "F32"},
                               {"shape", entry.spec.shape},
                               {"data_offsets", {begin, begin + entry.spec.numel() * 4}}};
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  char length[8];
  uint64_t size = json.size();
  for (int i = 0; i < 8; ++i) length[i] = static_cast<char>((size >> (8 * i)) & 0xff);
  ASSIGN_OR_RETURN(AtomicFileWriter writer, AtomicFileWriter::Open(path, 0640));
  RETURN_IF_ERROR(writer.Write(absl::string_view(length, 8)));
  RETURN_IF_ERROR(writer.Write(json));
  constexpr size_t kPiece = 16 << 20;
  const auto* bytes = reinterpret_cast<const char*>(values_.data());
  const size_t total = values_.size() * sizeof(float);
  for (size_t offset = 0; offset < total; offset += kPiece) {
    RETURN_IF_ERROR(writer.Write(absl::string_view(bytes + offset, std::min(kPiece, total - offset))));
  }
  return writer.Commit();
}

std::vector<rpc::TensorView> GlobalModel::Views() const {
  std::vector<rpc::TensorView> views;
  views.reserve(entries_.size());
  for (const Entry& entry : entries_) {
    views.push_back(rpc::TensorView{entry.spec.name, DType::kF32, entry.spec.shape,
                                    Bytes(values_.data() + entry.offset, entry.spec.numel()), entry.sha256});
  }
  return views;
}

std::span<float> GlobalModel::ContiguousTrainable() {
  if (trainable_ranges_.size() != 1) return {};
  return std::span<float>(values_.data() + trainable_ranges_[0].first,
                          static_cast<size_t>(trainable_ranges_[0].second));
}

void GlobalModel::GatherTrainable(std::span<float> out) const {
  size_t at = 0;
  for (const auto& [offset, count] : trainable_ranges_) {
    std::memcpy(out.data() + at, values_.data() + offset, static_cast<size_t>(count) * sizeof(float));
    at += static_cast<size_t>(count);
  }
}

void GlobalModel::ScatterTrainable(std::span<const float> values) {
  size_t at = 0;
  for (const auto& [offset, count] : trainable_ranges_) {
    std::memcpy(values_.data() + offset, values.data() + at, static_cast<size_t>(count) * sizeof(float));
    at += static_cast<size_t>(count);
  }
  Rehash();
}

void GlobalModel::Rehash() {
  std::vector<std::pair<std::string, crypto::Sha256Digest>> hashes;
  hashes.reserve(entries_.size());
  for (Entry& entry : entries_) {
    entry.sha256 = crypto::Sha256(Bytes(values_.data() + entry.offset, entry.spec.numel()));
    hashes.emplace_back(entry.spec.name, entry.sha256);
  }
  digest_ = ModelDigest(hashes);
}

}  // namespace fedattn::coordinator
