#include "fedattn/tensor/tensor_buffer.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fedattn/common/status_macros.h"

namespace fedattn {
namespace {
constexpr DType kAllDTypes[] = {DType::kF32, DType::kF16, DType::kBF16, DType::kF64,
                                DType::kI64, DType::kI32, DType::kU32,  DType::kU8};
}

absl::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kF64: return "F64";
    case DType::kI64: return "I64";
    case DType::kI32: return "I32";
    case DType::kU32: return "U32";
    case DType::kU8: return "U8";
  }
  return "?";
}

absl::StatusOr<DType> ParseDType(absl::string_view name) {
  for (DType dtype : kAllDTypes) {
    if (DTypeName(dtype) == name) return dtype;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown dtype '", name, "'"));
}

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF64:
    case DType::kI64: return 8;
    case DType::kF32:
    case DType::kI32:
    case DType::kU32: return 4;
    case DType::kF16:
    case DType::kBF16: return 2;
    case DType::kU8: return 1;
  }
  return 0;
}

absl::StatusOr<uint64_t> NumElements(const std::vector<int64_t>& shape) {
  uint64_t count = 1;
  for (int64_t dim : shape) {
    if (dim < 0) return absl::InvalidArgumentError(absl::StrCat("negative dimension ", dim));
    if (dim != 0 && count > UINT64_MAX / static_cast<uint64_t>(dim)) {
      return absl::InvalidArgumentError("shape has too many elements");
    }
    count *= static_cast<uint64_t>(dim);
  }
  return count;
}

absl::Status ValidateTensor(const TensorBuffer& tensor) {
  if (tensor.name.empty()) return absl::InvalidArgumentError("tensor has an empty name");
  auto elements = NumElements(tensor.shape);
  if (!elements.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", tensor.name, "': ", elements.status().message()));
  }
  const uint64_t expected = *elements * DTypeSize(tensor.dtype);
  if (expected != tensor.data.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor '", tensor.name, "' of shape [", absl::StrJoin(tensor.shape, ","), "] and dtype ",
        DTypeName(tensor.dtype), " needs ", expected, " bytes, has ", tensor.data.size()));
  }
  return absl::OkStatus();
}

}  // namespace fedattn
