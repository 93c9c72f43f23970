// Fuzz target: SecAgg+ message handling (fedattn/secagg/server.h and client.h behind
// fedattn/rpc/secagg_wire.h). A small federation (5 sites, complete graph, t = 3) runs rounds in
// which every message crosses its wire form (ToProto, serialize, parse, FromProto) as it does
// between agent and coordinator, and the input scripts an adversary: it injects arbitrary wire
// messages into the server or into site 0, tampers with honest messages in flight, silences
// sites (dropouts) and moves the stages on. Nothing may crash; and when every adversarial
// message was refused, a finished round's sum must be exactly the contributors' inputs.
//
// Input: a sequence of operations, each a byte (mod 10) and its operands:
//   0 advance: honest sites act on the current stage, then the server closes it
//   1 <site>: that site stays silent at the next advance
//   2 <len16 bytes> SecAggKeyAdvertisement to the server       3 ... SecAggShareKeys to the server
//   4 ... SecAggUnmaskResponse to the server                   5 <sender u32> <len16 bytes> masked input
//   6 ... SecAggNeighbourKeys to site 0   7 ... SecAggSharesForSite to site 0   8 ... SecAggUnmaskRequest to site 0
//   9 <site> <position u16> <xor>: the next honest message from that site is altered in flight
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "fedattn/crypto/prg.h"
#include "fedattn/crypto/signature.h"
#include "fedattn/rpc/secagg_wire.h"
#include "fedattn/secagg/client.h"
#include "fedattn/secagg/server.h"
#include "fuzz_input.h"
#include "google/protobuf/stubs/logging.h"

namespace {

using fedattn::fuzz::FuzzInput;
namespace secagg = fedattn::secagg;
namespace rpc = fedattn::rpc;
namespace v1 = fedattn::v1;

constexpr char kJob[] = "fuzz-job";
constexpr uint64_t kRound = 7;
constexpr uint64_t kLength = 4;
constexpr int kMaxOperations = 64;

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "secagg_fuzz: %s\n", what);
    std::abort();
  }
}

struct Identities {
  std::vector<secagg::SiteId> sites = {100, 107, 114, 121, 128};
  std::map<secagg::SiteId, fedattn::crypto::PKeyPtr> keys;
  std::shared_ptr<secagg::PeerDirectory> directory = std::make_shared<secagg::PeerDirectory>();

  Identities() {
    fedattn::crypto::DeterministicRandom random(1);
    for (secagg::SiteId site : sites) {
      fedattn::crypto::Key32 raw;
      Check(random.Fill(raw.mutable_span()).ok(), "random");
      auto key = fedattn::crypto::Ed25519PrivateKeyFromRaw(raw.span());
      Check(key.ok(), "identity key");
      Check(directory->Add(site, key->get()).ok(), "directory");
      keys[site] = std::move(key).value();
    }
  }
};

const Identities& Ids() {
  static const Identities* ids = new Identities();
  return *ids;
}

std::vector<uint32_t> InputOf(secagg::SiteId site) {
  std::vector<uint32_t> x(kLength);
  for (size_t i = 0; i < x.size(); ++i) x[i] = site * 1000 + static_cast<uint32_t>(i);
  return x;
}

// One round under attack.
class Round {
 public:
  Round() {
    config_.job_id = kJob;
    config_.round = kRound;
    config_.sites = Ids().sites;
    config_.vector_length = kLength;
    config_.max_abort_probability = 1.0;
    for (secagg::SiteId site : config_.sites) {
      auto client = secagg::SecAggClient::Create(config_, site, Ids().keys.at(site).get(), Ids().directory,
                                                 std::make_unique<fedattn::crypto::DeterministicRandom>(site));
      Check(client.ok(), "client");
      clients_[site] = std::move(client).value();
    }
    auto server = secagg::SecAggServer::Create(config_, Ids().directory);
    Check(server.ok(), "server");
    server_ = std::move(server).value();
  }

  void Run(FuzzInput& in) {
    for (int i = 0; i < kMaxOperations && !in.empty(); ++i) {
      switch (in.Byte() % 10) {
        case 0: Advance(); break;
        case 1: silent_.insert(SiteAt(in.Byte())); break;
        case 2: Inject<v1::SecAggKeyAdvertisement>(in, [&](const auto& m) { return server_->HandleAdvertisement(m); }); break;
        case 3: Inject<v1::SecAggShareKeys>(in, [&](const auto& m) { return server_->HandleShareKeys(m); }); break;
        case 4: Inject<v1::SecAggUnmaskResponse>(in, [&](const auto& m) { return server_->HandleUnmask(m); }); break;
        case 5: InjectMaskedInput(in); break;
        case 6:
          Inject<v1::SecAggNeighbourKeys>(in, [&](const secagg::NeighbourKeys& m) -> absl::Status {
            auto reply = Client0().ShareKeys(m);
            return reply.ok() ? server_->HandleShareKeys(*reply) : reply.status();
          });
          break;
        case 7:
          Inject<v1::SecAggSharesForSite>(in, [&](const secagg::SharesForSite& m) -> absl::Status {
            auto reply = Client0().MaskInput(m, InputOf(config_.sites[0]));
            return reply.ok() ? server_->HandleMaskedInput(*reply) : reply.status();
          });
          break;
        case 8:
          Inject<v1::SecAggUnmaskRequest>(in, [&](const secagg::UnmaskRequest& m) -> absl::Status {
            auto reply = Client0().Unmask(m);
            return reply.ok() ? server_->HandleUnmask(*reply) : reply.status();
          });
          break;
        case 9: {
          const secagg::SiteId site = SiteAt(in.Byte());
          const uint16_t position = in.U16();
          const uint8_t mask = in.Byte();
          tamper_[site] = {position, static_cast<uint8_t>(mask == 0 ? 1 : mask)};
          break;
        }
      }
    }
  }

 private:
  struct Tamper {
    uint16_t position;
    uint8_t mask;
  };

  secagg::SiteId SiteAt(uint8_t byte) const { return config_.sites[byte % config_.sites.size()]; }
  secagg::SecAggClient& Client0() { return *clients_.at(config_.sites[0]); }

  // Parses an adversary's wire message and hands it on; one that is accepted taints the round.
  template <typename Proto, typename Deliver>
  void Inject(FuzzInput& in, Deliver deliver) {
    Proto proto;
    if (!proto.ParseFromString(in.Bytes())) return;
    auto message = rpc::FromProto(proto, kJob, kRound);
    if (!message.ok()) return;
    if (deliver(*message).ok()) tainted_ = true;
  }

  void InjectMaskedInput(FuzzInput& in) {
    const secagg::SiteId sender = in.U32();
    const std::string bytes = in.Bytes();
    std::vector<uint32_t> masked(bytes.size() / 4);
    for (size_t i = 0; i < masked.size(); ++i) {
      masked[i] = static_cast<uint8_t>(bytes[4 * i]) | static_cast<uint8_t>(bytes[4 * i + 1]) << 8 |
                  static_cast<uint8_t>(bytes[4 * i + 2]) << 16 | static_cast<uint32_t>(static_cast<uint8_t>(bytes[4 * i + 3])) << 24;
    }
    if (server_->HandleMaskedInput(kJob, kRound, sender, masked).ok()) tainted_ = true;
  }

  // An honest message from `site` on its way: through the wire form, altered if so scripted.
  // nullopt if it does not survive (the alteration broke its encoding).
  template <typename Message>
  std::optional<Message> Send(secagg::SiteId site, const Message& message) {
    auto proto = rpc::ToProto(message);
    std::string bytes = proto.SerializeAsString();
    auto tamper = tamper_.find(site);
    if (tamper != tamper_.end()) {
      if (!bytes.empty()) bytes[tamper->second.position % bytes.size()] ^= static_cast<char>(tamper->second.mask);
      tamper_.erase(tamper);
      tainted_ = true;
    }
    decltype(proto) parsed;
    if (!parsed.ParseFromString(bytes)) return std::nullopt;
    auto back = rpc::FromProto(parsed, kJob, kRound);
    if (!back.ok()) return std::nullopt;
    return std::move(back).value();
  }

  // The server's messages to the sites cross the wire too; an honest one must survive it.
  template <typename Message>
  Message Deliver(const Message& message) {
    auto proto = rpc::ToProto(message);
    decltype(proto) parsed;
    Check(parsed.ParseFromString(proto.SerializeAsString()), "a server message that does not parse");
    auto back = rpc::FromProto(parsed, kJob, kRound);
    Check(back.ok(), "a server message that FromProto refuses");
    return std::move(back).value();
  }

  void Advance() {
    std::set<secagg::SiteId> silent;
    silent.swap(silent_);
    switch (server_->stage()) {
      case secagg::Stage::kAdvertiseKeys: {
        for (auto& [site, client] : clients_) {
          if (silent.count(site)) continue;
          auto message = client->AdvertiseKeys();
          if (!message.ok()) continue;
          if (auto sent = Send(site, *message)) (void)server_->HandleAdvertisement(*sent);
        }
        auto keys = server_->FinishAdvertise();
        if (!keys.ok()) return;
        for (const secagg::NeighbourKeys& message : *keys) neighbour_keys_[message.recipient] = Deliver(message);
        break;
      }
      case secagg::Stage::kShareKeys: {
        for (const auto& [site, message] : neighbour_keys_) {
          if (silent.count(site)) continue;
          auto reply = clients_.at(site)->ShareKeys(message);
          if (!reply.ok()) continue;
          if (auto sent = Send(site, *reply)) (void)server_->HandleShareKeys(*sent);
        }
        auto routed = server_->FinishShareKeys();
        if (!routed.ok()) return;
        for (const secagg::SharesForSite& message : *routed) shares_[message.recipient] = Deliver(message);
        break;
      }
      case secagg::Stage::kMaskedInput: {
        for (const auto& [site, message] : shares_) {
          if (silent.count(site)) continue;
          auto reply = clients_.at(site)->MaskInput(message, InputOf(site));
          if (!reply.ok()) continue;
          auto tamper = tamper_.find(site);
          if (tamper != tamper_.end() && !reply->masked.empty()) {
            reply->masked[tamper->second.position % reply->masked.size()] ^= tamper->second.mask;
            tamper_.erase(tamper);
            tainted_ = true;
          }
          (void)server_->HandleMaskedInput(*reply);
        }
        auto request = server_->FinishMaskedInput();
        if (!request.ok()) return;
        unmask_request_ = Deliver(*request);
        break;
      }
      case secagg::Stage::kUnmask: {
        if (unmask_request_.has_value()) {
          for (secagg::SiteId site : unmask_request_->survivors) {
            if (silent.count(site) || !clients_.count(site)) continue;
            auto reply = clients_.at(site)->Unmask(*unmask_request_);
            if (!reply.ok()) continue;
            if (auto sent = Send(site, *reply)) (void)server_->HandleUnmask(*sent);
          }
        }
        auto result = server_->FinishUnmask();
        if (result.ok()) CheckResult(*result);
        break;
      }
      case secagg::Stage::kDone:
      case secagg::Stage::kAborted:
        Check(!server_->HandleUnmask(secagg::UnmaskResponse{kJob, kRound, config_.sites[0], {}}).ok(),
              "a finished round accepted a message");
        break;
    }
  }

  void CheckResult(const secagg::AggregateResult& result) {
    Check(result.sum.size() == kLength, "a sum of the wrong length");
    for (secagg::SiteId site : result.contributors) {
      Check(clients_.count(site) == 1, "a contributor that is not in the round");
    }
    if (tainted_) return;
    std::vector<uint32_t> expected(kLength, 0);
    for (secagg::SiteId site : result.contributors) {
      const std::vector<uint32_t> x = InputOf(site);
      for (size_t i = 0; i < kLength; ++i) expected[i] += x[i];
    }
    Check(result.sum == expected, "an untampered round summed to the wrong vector");
  }

  secagg::SecAggConfig config_;
  std::map<secagg::SiteId, std::unique_ptr<secagg::SecAggClient>> clients_;
  std::unique_ptr<secagg::SecAggServer> server_;
  std::set<secagg::SiteId> silent_;
  std::map<secagg::SiteId, Tamper> tamper_;
  std::map<secagg::SiteId, secagg::NeighbourKeys> neighbour_keys_;
  std::map<secagg::SiteId, secagg::SharesForSite> shares_;
  std::optional<secagg::UnmaskRequest> unmask_request_;
  bool tainted_ = false;
};

}  // namespace

// Protobuf logs every string field with invalid UTF-8 it refuses to parse; the fuzzer makes
// thousands a second.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  Round round;
  round.Run(in);
  return 0;
}
