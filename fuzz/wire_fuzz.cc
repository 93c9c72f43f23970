// Fuzz target: what the coordinator's site service does with the bytes of an UploadUpdate call
// once the caller's certificate has been checked (coordinator/src/site_service.cc): each stream
// message is parsed as a v1::UploadUpdateRequest and its chunk goes through the same
// rpc::TensorStreamReader and sink the service uses, with the same StreamLimits{}.
//
// Input: a mode byte, then messages, each a 16-bit little-endian length and that many bytes of
// serialized UploadUpdateRequest (bytes that do not parse are skipped, as gRPC would refuse them).
//   mode % 2 == 0: round 0 (the initial model): an rpc::CollectingSink keeps the tensors in
//                  memory. What completes is chunked again (TensorChunker, small chunks) and must
//                  read back identical.
//   mode % 2 == 1: later rounds: an UploadSpool expecting one U32 tensor "update" of 1 + (next
//                  byte) elements, spooled to a file and mapped once complete.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "fedattn/common/status_macros.h"
#include "fedattn/coordinator/upload_spool.h"
#include "fedattn/rpc/tensor_stream.h"
#include "fedattn/v1/fedattn.pb.h"
#include "fuzz_input.h"
#include "google/protobuf/stubs/logging.h"

namespace {

using fedattn::fuzz::FuzzInput;
namespace rpc = fedattn::rpc;

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "wire_fuzz: %s\n", what);
    std::abort();
  }
}

const std::filesystem::path& Scratch() {
  static const std::filesystem::path dir = [] {
    std::string pattern = (std::filesystem::temp_directory_path() / "fedattn-wire-fuzz-XXXXXX").string();
    Check(mkdtemp(pattern.data()) != nullptr, "mkdtemp failed");
    return std::filesystem::path(pattern);
  }();
  return dir;
}

// Feeds every message's chunk to `stream`, as the service's read loop does: the first error ends
// the call. Returns the status the call would end with.
absl::Status Feed(FuzzInput& in, rpc::TensorStreamReader& stream) {
  fedattn::v1::UploadUpdateRequest message;
  while (!in.empty()) {
    if (!message.ParseFromString(in.Bytes())) continue;
    if (message.has_chunk()) RETURN_IF_ERROR(stream.Add(message.chunk()));
  }
  return stream.Finish();
}

void RoundZero(FuzzInput& in) {
  rpc::CollectingSink sink;
  rpc::TensorStreamReader stream(&sink, rpc::StreamLimits{});
  if (!Feed(in, stream).ok()) return;
  std::vector<fedattn::TensorBuffer> tensors = sink.Take();
  Check(tensors.size() == stream.tensors_completed(), "tensor count differs from the reader's");
  for (const fedattn::TensorBuffer& tensor : tensors) {
    Check(fedattn::ValidateTensor(tensor).ok(), "a received tensor that does not validate");
  }
  auto chunker = rpc::TensorChunker::Create(tensors, /*max_chunk_bytes=*/7);
  Check(chunker.ok(), "received tensors that cannot be chunked again");
  rpc::CollectingSink again;
  rpc::TensorStreamReader reread(&again, rpc::StreamLimits{});
  fedattn::v1::TensorChunk chunk;
  while (chunker->Next(&chunk)) Check(reread.Add(chunk).ok(), "a chunker's stream that is refused");
  Check(reread.Finish().ok(), "a chunker's stream that does not finish");
  std::vector<fedattn::TensorBuffer> round_trip = again.Take();
  Check(round_trip.size() == tensors.size(), "re-chunking changed the tensor count");
  for (size_t i = 0; i < tensors.size(); ++i) {
    Check(round_trip[i].name == tensors[i].name && round_trip[i].dtype == tensors[i].dtype &&
              round_trip[i].shape == tensors[i].shape && round_trip[i].data == tensors[i].data,
          "re-chunking changed a tensor");
  }
}

void LaterRound(FuzzInput& in) {
  const int64_t elements = 1 + in.Byte();
  auto spool = fedattn::coordinator::UploadSpool::Create(Scratch() / "upload.spool", "update",
                                                         fedattn::DType::kU32, elements);
  Check(spool.ok(), "cannot create the spool");
  rpc::TensorStreamReader stream(spool->get(), rpc::StreamLimits{});
  if (!Feed(in, stream).ok() || !(*spool)->complete()) return;
  auto mapped = (*spool)->Map();
  Check(mapped.ok(), "a complete spool that cannot be mapped");
  Check(mapped->bytes().size() == static_cast<size_t>(elements) * 4, "a spool of the wrong size");
}

}  // namespace

// Protobuf logs every string field with invalid UTF-8 it refuses to parse; the fuzzer makes
// thousands a second.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  if (in.Byte() % 2 == 0) {
    RoundZero(in);
  } else {
    LaterRound(in);
  }
  return 0;
}
