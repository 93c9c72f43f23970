// Fuzz target: safetensors parsing (fedattn/tensor/safetensors.h), the format of checkpoints and
// of models imported from the Hub. Any byte string must parse or be refused with a status, never
// crash; what parses must serialize again and parse back to the same tensors and metadata.
#include <cstdint>
#include <cstdlib>
#include <cstdio>

#include "fedattn/tensor/safetensors.h"

namespace {

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "safetensors_fuzz: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<fedattn::SafetensorsFile> file = fedattn::ParseSafetensors(bytes, "fuzz.safetensors");
  if (!file.ok()) {
    Check(!file.status().message().empty(), "a refusal without a message");
    return 0;
  }
  for (const fedattn::TensorBuffer& tensor : file->tensors) {
    Check(fedattn::ValidateTensor(tensor).ok(), "a parsed tensor that does not validate");
  }
  // The checksum key is rewritten by SerializeSafetensors; compare everything else.
  std::map<std::string, std::string> metadata = file->metadata;
  metadata.erase(fedattn::kChecksumKey);
  absl::StatusOr<std::string> again = fedattn::SerializeSafetensors(file->tensors, metadata);
  Check(again.ok(), "parsed tensors that cannot be serialized again");
  absl::StatusOr<fedattn::SafetensorsFile> round_trip = fedattn::ParseSafetensors(*again, "again");
  Check(round_trip.ok(), "a serialized file that does not parse");
  Check(round_trip->tensors.size() == file->tensors.size(), "round trip changed the tensor count");
  for (size_t i = 0; i < file->tensors.size(); ++i) {
    const fedattn::TensorBuffer& a = file->tensors[i];
    const fedattn::TensorBuffer& b = round_trip->tensors[i];
    Check(a.name == b.name && a.dtype == b.dtype && a.shape == b.shape && a.data == b.data,
          "round trip changed a tensor");
  }
  std::map<std::string, std::string> metadata_again = round_trip->metadata;
  metadata_again.erase(fedattn::kChecksumKey);
  Check(metadata_again == metadata, "round trip changed the metadata");
  return 0;
}
