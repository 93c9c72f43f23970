#include "fedattn/parallel/collective.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"

namespace fedattn::parallel {

absl::Status SingleProcessCollective::AllGather(std::span<const uint8_t> mine, std::span<uint8_t> all) {
  if (all.size() != mine.size()) return absl::InvalidArgumentError("AllGather: output size is not size() * input size");
  std::copy(mine.begin(), mine.end(), all.begin());
  return absl::OkStatus();
}

absl::Status AllReduceSumBucketed(Collective& collective, std::span<float> values, int64_t bucket_floats) {
  if (bucket_floats < 1) return absl::InvalidArgumentError("bucket size must be positive");
  if (collective.size() == 1) return absl::OkStatus();
  for (size_t begin = 0; begin < values.size(); begin += static_cast<size_t>(bucket_floats)) {
    const size_t count = std::min(values.size() - begin, static_cast<size_t>(bucket_floats));
    RETURN_IF_ERROR(collective.AllReduceSum(values.subspan(begin, count)));
  }
  return absl::OkStatus();
}

absl::Status BroadcastString(Collective& collective, std::string* value, int root) {
  uint64_t length = value->size();
  RETURN_IF_ERROR(collective.Broadcast(std::span<uint8_t>(reinterpret_cast<uint8_t*>(&length), sizeof(length)), root));
  value->resize(length);
  if (length == 0) return absl::OkStatus();
  return collective.Broadcast(std::span<uint8_t>(reinterpret_cast<uint8_t*>(value->data()), length), root);
}

absl::Status AgreeOnStatus(Collective& collective, const absl::Status& local) {
  if (collective.size() == 1) return local;
  const uint8_t failed = local.ok() ? 0 : 1;
  std::vector<uint8_t> all(static_cast<size_t>(collective.size()));
  RETURN_IF_ERROR(collective.AllGather(std::span<const uint8_t>(&failed, 1), all));
  const auto first = std::find(all.begin(), all.end(), uint8_t{1});
  if (first == all.end()) return absl::OkStatus();
  const int root = static_cast<int>(first - all.begin());
  int32_t code = static_cast<int32_t>(local.code());
  RETURN_IF_ERROR(collective.Broadcast(std::span<uint8_t>(reinterpret_cast<uint8_t*>(&code), sizeof(code)), root));
  std::string message(local.message());
  RETURN_IF_ERROR(BroadcastString(collective, &message, root));
  if (code <= 0 || code > static_cast<int32_t>(absl::StatusCode::kUnauthenticated)) code = 13;  // kInternal
  return absl::Status(static_cast<absl::StatusCode>(code), absl::StrCat("rank ", root, ": ", message));
}

}  // namespace fedattn::parallel
