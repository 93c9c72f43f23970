// A named tensor as plain bytes: what travels between processes, is aggregated by the
// coordinator and saved to files, without LibTorch. Data is little-endian, row-major.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fedattn {

enum class DType { kF32, kF16, kBF16, kF64, kI64, kI32, kU32, kU8 };

// Safetensors spelling: "F32", "F16", "BF16", "F64", "I64", "I32", "U32", "U8".
absl::string_view DTypeName(DType dtype);
[[nodiscard]] absl::StatusOr<DType> ParseDType(absl::string_view name);
size_t DTypeSize(DType dtype);

struct TensorBuffer {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;  // exactly NumElements(shape) * DTypeSize(dtype) bytes
};

// Product of the dimensions; INVALID_ARGUMENT for a negative dimension or an overflow.
[[nodiscard]] absl::StatusOr<uint64_t> NumElements(const std::vector<int64_t>& shape);
// Checks name, shape and that the data size matches shape and dtype; the message names the tensor.
[[nodiscard]] absl::Status ValidateTensor(const TensorBuffer& tensor);

}  // namespace fedattn
