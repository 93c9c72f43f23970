#include "fedattn/tensor/model_digest.h"

namespace fedattn {

crypto::Sha256Digest ModelDigest(const std::vector<std::pair<std::string, crypto::Sha256Digest>>& tensors) {
  crypto::Sha256Hasher hasher;
  hasher.Update("fedattn.model.v1");
  for (const auto& [name, sha256] : tensors) {
    uint8_t length[8];
    const uint64_t size = name.size();
    for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>((size >> (8 * i)) & 0xff);
    hasher.Update(std::span<const uint8_t>(length, 8));
    hasher.Update(name);
    hasher.Update(sha256);
  }
  return hasher.Finish();
}

crypto::Sha256Digest ModelDigest(const std::vector<TensorBuffer>& tensors) {
  std::vector<std::pair<std::string, crypto::Sha256Digest>> hashes;
  hashes.reserve(tensors.size());
  for (const TensorBuffer& tensor : tensors) hashes.emplace_back(tensor.name, crypto::Sha256(tensor.data));
  return ModelDigest(hashes);
}

}  // namespace fedattn
