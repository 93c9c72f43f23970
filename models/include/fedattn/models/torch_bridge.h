// Conversion between LibTorch tensors and the LibTorch-free TensorBuffer that travels on the wire
// and is aggregated by the coordinator.
#pragma once

#include <torch/types.h>

#include "absl/status/statusor.h"
#include "fedattn/tensor/tensor_buffer.h"

namespace fedattn::models {

// Copies a tensor (any device, any layout) into a named CPU buffer. UNIMPLEMENTED for dtypes the
// wire format has no name for (complex, bool, …).
[[nodiscard]] absl::StatusOr<TensorBuffer> ToBuffer(const std::string& name, const torch::Tensor& tensor);

// A new CPU tensor holding a copy of the buffer's data. INVALID_ARGUMENT if the buffer is
// inconsistent (ValidateTensor) or its dtype has no LibTorch counterpart.
[[nodiscard]] absl::StatusOr<torch::Tensor> FromBuffer(const TensorBuffer& buffer);

}  // namespace fedattn::models
