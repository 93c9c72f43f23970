#include "fedattn/models/torch_bridge.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"

namespace fedattn::models {
namespace {

absl::StatusOr<DType> ToDType(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32: return DType::kF32;
    case torch::kFloat16: return DType::kF16;
    case torch::kBFloat16: return DType::kBF16;
    case torch::kFloat64: return DType::kF64;
    case torch::kInt64: return DType::kI64;
    case torch::kInt32: return DType::kI32;
    case torch::kUInt8: return DType::kU8;
    default: return absl::UnimplementedError(absl::StrCat("no wire dtype for ", c10::toString(type)));
  }
}

absl::StatusOr<torch::ScalarType> ToScalarType(DType dtype) {
  switch (dtype) {
    case DType::kF32: return torch::kFloat32;
    case DType::kF16: return torch::kFloat16;
    case DType::kBF16: return torch::kBFloat16;
    case DType::kF64: return torch::kFloat64;
    case DType::kI64: return torch::kInt64;
    case DType::kI32: return torch::kInt32;
    case DType::kU8: return torch::kUInt8;
    case DType::kU32: break;  // LibTorch 1.13 has no uint32
  }
  return absl::InvalidArgumentError(absl::StrCat("dtype ", DTypeName(dtype), " has no LibTorch type"));
}

}  // namespace

absl::StatusOr<TensorBuffer> ToBuffer(const std::string& name, const torch::Tensor& tensor) {
  TensorBuffer buffer;
  buffer.name = name;
  auto dtype = ToDType(tensor.scalar_type());
  if (!dtype.ok()) return absl::Status(dtype.status().code(), absl::StrCat("tensor '", name, "': ", dtype.status().message()));
  buffer.dtype = *dtype;
  buffer.shape.assign(tensor.sizes().begin(), tensor.sizes().end());
  const torch::Tensor cpu = tensor.detach().to(torch::kCPU).contiguous();
  buffer.data.resize(cpu.numel() * cpu.element_size());
  if (!buffer.data.empty()) std::memcpy(buffer.data.data(), cpu.data_ptr(), buffer.data.size());
  return buffer;
}

absl::StatusOr<torch::Tensor> FromBuffer(const TensorBuffer& buffer) {
  RETURN_IF_ERROR(ValidateTensor(buffer));
  ASSIGN_OR_RETURN(torch::ScalarType type, ToScalarType(buffer.dtype));
  torch::Tensor tensor = torch::empty(buffer.shape, torch::TensorOptions().dtype(type));
  if (!buffer.data.empty()) std::memcpy(tensor.data_ptr(), buffer.data.data(), buffer.data.size());
  return tensor;
}

}  // namespace fedattn::models
