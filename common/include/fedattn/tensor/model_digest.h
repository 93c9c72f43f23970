// A model's identity: SHA-256 over its tensors' names and SHA-256 hashes, in model order. The
// coordinator, the sites and the ledgers name a global model by it, and it is cheap to compute
// from the per-tensor hashes that tensor streams already carry.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "fedattn/crypto/digest.h"
#include "fedattn/tensor/tensor_buffer.h"

namespace fedattn {

// H("fedattn.model.v1" || for each tensor: u64le(len(name)) || name || sha256(data)).
crypto::Sha256Digest ModelDigest(const std::vector<std::pair<std::string, crypto::Sha256Digest>>& tensors);
// The same over whole tensors, hashing each.
crypto::Sha256Digest ModelDigest(const std::vector<TensorBuffer>& tensors);

}  // namespace fedattn
