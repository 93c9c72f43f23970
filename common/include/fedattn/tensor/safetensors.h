// Safetensors files (the Hugging Face format) on LibTorch-free TensorBuffers, with a checksum.
//
// Layout (https://github.com/huggingface/safetensors, "Format"): an 8-byte little-endian header
// length N, N bytes of JSON {"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...,
// "__metadata__": {"key": "value"}}, then the data section; offsets are relative to it, and the
// tensors cover it exactly, without holes or overlaps.
//
// FedAttn writes the SHA-256 of the data section, hex, under the metadata key kChecksumKey; a file
// that carries it is verified on load (DATA_LOSS on mismatch). Files without it (straight from the
// Hub) load unverified. Functions are thread-compatible (no shared state).
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fedattn/tensor/tensor_buffer.h"

namespace fedattn {

inline constexpr char kChecksumKey[] = "fedattn.sha256";

struct SafetensorsFile {
  std::vector<TensorBuffer> tensors;            // in data-offset order
  std::map<std::string, std::string> metadata;  // "__metadata__", checksum included
};

// Encodes `tensors` (names must be unique and valid, see ValidateTensor) with `metadata` plus the
// checksum. INVALID_ARGUMENT names the offending tensor.
[[nodiscard]] absl::StatusOr<std::string> SerializeSafetensors(
    const std::vector<TensorBuffer>& tensors, const std::map<std::string, std::string>& metadata = {});

// Decodes and checks a whole file held in memory. `source` names it in messages. Errors:
// INVALID_ARGUMENT for a malformed header or inconsistent tensor (named), DATA_LOSS for a
// truncated file or a checksum mismatch.
[[nodiscard]] absl::StatusOr<SafetensorsFile> ParseSafetensors(absl::string_view bytes,
                                                               absl::string_view source);

// Writes atomically (temporary file + rename). Errors name the path.
[[nodiscard]] absl::Status SaveSafetensors(const std::filesystem::path& path,
                                           const std::vector<TensorBuffer>& tensors,
                                           const std::map<std::string, std::string>& metadata = {});
// Reads and parses `path`; NOT_FOUND if missing, otherwise as ParseSafetensors.
[[nodiscard]] absl::StatusOr<SafetensorsFile> LoadSafetensors(const std::filesystem::path& path);

}  // namespace fedattn
