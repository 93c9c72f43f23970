#include "fedattn/tensor/safetensors.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"
#include "fedattn/common/files.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/crypto/digest.h"
#include "nlohmann/json.hpp"

namespace fedattn {
namespace {

// The reference implementation refuses headers above 100 MB; so do we, before allocating.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

std::string DataDigest(absl::string_view data) {
  const crypto::Sha256Digest digest = crypto::Sha256(data);
  return crypto::ToHex(digest);
}

absl::Status Invalid(absl::string_view source, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", message));
}

}  // namespace

absl::StatusOr<std::string> SerializeSafetensors(const std::vector<TensorBuffer>& tensors,
                                                 const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  std::set<std::string> names;
  std::string data;
  for (const TensorBuffer& tensor : tensors) {
    RETURN_IF_ERROR(ValidateTensor(tensor));
    if (tensor.name == "__metadata__") {
      return absl::InvalidArgumentError("tensor name '__metadata__' is reserved");
    }
    if (!names.insert(tensor.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate tensor name '", tensor.name, "'"));
    }
    const size_t begin = data.size();
    data.append(reinterpret_cast<const char*>(tensor.data.data()), tensor.data.size());
    header[tensor.name] = {{"dtype", std::string(DTypeName(tensor.dtype))},
                           {"shape", tensor.shape},
                           {"data_offsets", {begin, data.size()}}};
  }
  nlohmann::json meta = nlohmann::json::object();
  for (const auto& [key, value] : metadata) meta[key] = value;
  meta[kChecksumKey] = DataDigest(data);
  header["__metadata__"] = meta;
  std::string header_text = header.dump();
  // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  uint64_t n = header_text.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += header_text;
  out += data;
  return out;
}

absl::StatusOr<SafetensorsFile> ParseSafetensors(absl::string_view bytes, absl::string_view source) {
  if (bytes.size() < 8) {
    return absl::DataLossError(absl::StrCat(source, ": truncated: ", bytes.size(),
                                            " bytes, fewer than the 8-byte header length"));
  }
  uint64_t header_size = 0;
  for (int i = 0; i < 8; ++i) header_size |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  if (header_size > kMaxHeaderBytes) {
    return Invalid(source, absl::StrCat("header length ", header_size, " exceeds the 100 MB limit"));
  }
  if (header_size > bytes.size() - 8) {
    return absl::DataLossError(absl::StrCat(source, ": truncated: header says ", header_size,
                                            " bytes, file has ", bytes.size() - 8));
  }
  const absl::string_view header_text = bytes.substr(8, header_size);
  const absl::string_view data = bytes.substr(8 + header_size);
  const nlohmann::json header = nlohmann::json::parse(header_text.begin(), header_text.end(), nullptr,
                                                      /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    return Invalid(source, "header is not a JSON object");
  }
  SafetensorsFile file;
  struct Range {
    uint64_t begin, end;
    size_t index;
  };
  std::vector<Range> ranges;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) return Invalid(source, "__metadata__ is not an object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) return Invalid(source, absl::StrCat("__metadata__.", key, " is not a string"));
        file.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    const std::string where = absl::StrCat("tensor '", name, "'");
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
        !entry.contains("data_offsets") || !entry["dtype"].is_string() || !entry["shape"].is_array() ||
        !entry["data_offsets"].is_array() || entry["data_offsets"].size() != 2) {
      return Invalid(source, absl::StrCat(where, ": needs dtype, shape and data_offsets [begin, end]"));
    }
    TensorBuffer tensor;
    tensor.name = name;
    auto dtype = ParseDType(entry["dtype"].get<std::string>());
    if (!dtype.ok()) return Invalid(source, absl::StrCat(where, ": ", dtype.status().message()));
    tensor.dtype = *dtype;
    for (const auto& dim : entry["shape"]) {
      if (!dim.is_number_unsigned()) return Invalid(source, absl::StrCat(where, ": shape has a non-integer or negative dimension"));
      tensor.shape.push_back(static_cast<int64_t>(dim.get<uint64_t>()));
    }
    const auto& offsets = entry["data_offsets"];
    if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned()) {
      return Invalid(source, absl::StrCat(where, ": data_offsets must be non-negative integers"));
    }
    const uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
    auto count = NumElements(tensor.shape);
    if (!count.ok()) return Invalid(source, absl::StrCat(where, ": ", count.status().message()));
    if (end < begin || end - begin != *count * DTypeSize(tensor.dtype)) {
      return Invalid(source, absl::StrCat(where, ": data_offsets [", begin, ", ", end, "] do not hold ",
                                          *count, " elements of ", DTypeName(tensor.dtype)));
    }
    if (end > data.size()) {
      return absl::DataLossError(absl::StrCat(source, ": truncated: ", where, " ends at byte ", end,
                                              " of a data section of ", data.size()));
    }
    ranges.push_back({begin, end, file.tensors.size()});
    file.tensors.push_back(std::move(tensor));
  }
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  uint64_t expected = 0;
  for (const Range& range : ranges) {
    if (range.begin != expected) {
      return Invalid(source, absl::StrCat("tensor '", file.tensors[range.index].name,
                                          "' overlaps another or leaves a hole at byte ", expected));
    }
    expected = range.end;
  }
  if (expected != data.size()) {
    return Invalid(source, absl::StrCat("data section has ", data.size() - expected, " bytes no tensor owns"));
  }
  if (auto it = file.metadata.find(kChecksumKey); it != file.metadata.end()) {
    const std::string actual = DataDigest(data);
    if (actual != it->second) {
      return absl::DataLossError(absl::StrCat(source, ": checksum mismatch: header says ", it->second,
                                              ", data hashes to ", actual));
    }
  }
  std::vector<TensorBuffer> ordered;
  ordered.reserve(ranges.size());
  for (const Range& range : ranges) {
    TensorBuffer& tensor = file.tensors[range.index];
    tensor.data.assign(reinterpret_cast<const uint8_t*>(data.data()) + range.begin,
                       reinterpret_cast<const uint8_t*>(data.data()) + range.end);
    ordered.push_back(std::move(tensor));
  }
  file.tensors = std::move(ordered);
  return file;
}

absl::Status SaveSafetensors(const std::filesystem::path& path, const std::vector<TensorBuffer>& tensors,
                             const std::map<std::string, std::string>& metadata) {
  auto bytes = SerializeSafetensors(tensors, metadata);
  if (!bytes.ok()) {
    return absl::Status(bytes.status().code(), absl::StrCat(path.string(), ": ", bytes.status().message()));
  }
  return WriteFileAtomic(path, *bytes);
}

absl::StatusOr<SafetensorsFile> LoadSafetensors(const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  return ParseSafetensors(bytes, path.string());
}

}  // namespace fedattn
