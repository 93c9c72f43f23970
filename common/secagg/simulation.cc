#include "fedattn/secagg/simulation.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/crypto/prg.h"
#include "fedattn/crypto/signature.h"
#include "fedattn/secagg/client.h"

namespace fedattn::secagg {
namespace {

uint64_t Mix(uint64_t seed, uint64_t salt) {  // SplitMix64 finaliser
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (salt + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double Seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

struct ClientState {
  std::unique_ptr<SecAggClient> client;
  double seconds[4] = {0, 0, 0, 0};
  bool ran[4] = {false, false, false, false};
  uint64_t sent = 0;
  uint64_t received = 0;
};

}  // namespace

absl::Status FillTestInput(uint64_t seed, SiteId site, uint32_t bound, std::span<uint32_t> out) {
  crypto::DeterministicRandom random(Mix(seed, 0x1000000000ull + site));
  RETURN_IF_ERROR(random.Fill(std::span(reinterpret_cast<uint8_t*>(out.data()), out.size() * 4)));
  if (bound != 0) {
    for (uint32_t& w : out) w %= bound;
  }
  return absl::OkStatus();
}

absl::StatusOr<SimulationReport> RunSimulation(const SimulationOptions& options,
                                               const InputFn& input) {
  ASSIGN_OR_RETURN(const SecAggConfig config, options.config.Resolved());
  auto drops_at = [&](SiteId site, Stage stage) {
    auto it = options.dropouts.find(site);
    return it != options.dropouts.end() && static_cast<int>(it->second) <= static_cast<int>(stage);
  };

  // Identities: Ed25519 keys from the seed; the directory holds only the public halves.
  crypto::DeterministicRandom identity_random(Mix(options.seed, 0));
  auto directory = std::make_shared<PeerDirectory>();
  std::map<SiteId, ClientState> clients;
  for (SiteId site : config.sites) {
    crypto::Key32 raw;
    RETURN_IF_ERROR(identity_random.Fill(raw.mutable_span()));
    ASSIGN_OR_RETURN(crypto::PKeyPtr identity, crypto::Ed25519PrivateKeyFromRaw(raw.span()));
    ASSIGN_OR_RETURN(const auto public_raw, crypto::Ed25519RawPublicKey(identity.get()));
    ASSIGN_OR_RETURN(crypto::PKeyPtr public_key, crypto::Ed25519PublicKeyFromRaw(public_raw));
    RETURN_IF_ERROR(directory->Add(site, public_key.get()));
    ASSIGN_OR_RETURN(clients[site].client,
                     SecAggClient::Create(config, site, identity.get(), directory,
                                          std::make_unique<crypto::DeterministicRandom>(
                                              Mix(options.seed, 1 + uint64_t{site}))));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<SecAggServer> server, SecAggServer::Create(config, directory));

  SimulationReport report;
  uint64_t server_received = 0;
  auto timed = [](double& acc, auto&& fn) {
    Stopwatch watch;
    auto result = fn();
    acc += watch.Seconds();
    return result;
  };

  // Stage 0: advertise keys.
  for (auto& entry : clients) {  // not a structured binding: clang 14 cannot capture one
    const SiteId site = entry.first;
    ClientState& state = entry.second;
    if (drops_at(site, Stage::kAdvertiseKeys)) continue;
    state.ran[0] = true;
    ASSIGN_OR_RETURN(KeyAdvertisement message,
                     timed(state.seconds[0], [&] { return state.client->AdvertiseKeys(); }));
    state.sent += WireSize(message);
    server_received += WireSize(message);
    RETURN_IF_ERROR(
        timed(report.server.stage[0], [&] { return server->HandleAdvertisement(message); }));
  }
  ASSIGN_OR_RETURN(std::vector<NeighbourKeys> keys,
                   timed(report.server.stage[0], [&] { return server->FinishAdvertise(); }));

  // Stage 1: share keys.
  for (const NeighbourKeys& message : keys) {
    ClientState& state = clients.at(message.recipient);
    if (drops_at(message.recipient, Stage::kShareKeys)) continue;
    state.ran[1] = true;
    state.received += WireSize(message);
    ASSIGN_OR_RETURN(ShareKeysMessage reply,
                     timed(state.seconds[1], [&] { return state.client->ShareKeys(message); }));
    state.sent += WireSize(reply);
    server_received += WireSize(reply);
    RETURN_IF_ERROR(timed(report.server.stage[1], [&] { return server->HandleShareKeys(reply); }));
  }
  keys.clear();
  ASSIGN_OR_RETURN(std::vector<SharesForSite> routed,
                   timed(report.server.stage[1], [&] { return server->FinishShareKeys(); }));

  // Stage 2: masked input. Each client masks its buffer in place and the server folds it into
  // its running sum, so one vector is alive at a time. Filling the input is not timed.
  for (const SharesForSite& message : routed) {
    ClientState& state = clients.at(message.recipient);
    if (drops_at(message.recipient, Stage::kMaskedInput)) continue;
    state.ran[2] = true;
    state.received += WireSize(message);
    std::vector<uint32_t> buffer(config.vector_length);
    RETURN_IF_ERROR(input(message.recipient, buffer));
    ASSIGN_OR_RETURN(MaskedInput reply, timed(state.seconds[2], [&] {
                       return state.client->MaskInput(message, std::move(buffer));
                     }));
    state.sent += WireSize(reply);
    server_received += WireSize(reply);
    RETURN_IF_ERROR(
        timed(report.server.stage[2], [&] { return server->HandleMaskedInput(reply); }));
  }
  routed.clear();
  ASSIGN_OR_RETURN(UnmaskRequest request,
                   timed(report.server.stage[2], [&] { return server->FinishMaskedInput(); }));

  // Stage 3: unmask.
  for (SiteId site : request.survivors) {
    ClientState& state = clients.at(site);
    if (drops_at(site, Stage::kUnmask)) continue;
    state.ran[3] = true;
    state.received += WireSize(request);
    ASSIGN_OR_RETURN(UnmaskResponse reply,
                     timed(state.seconds[3], [&] { return state.client->Unmask(request); }));
    state.sent += WireSize(reply);
    server_received += WireSize(reply);
    RETURN_IF_ERROR(timed(report.server.stage[3], [&] { return server->HandleUnmask(reply); }));
  }
  ASSIGN_OR_RETURN(report.result,
                   timed(report.server.stage[3], [&] { return server->FinishUnmask(); }));

  for (int s = 0; s < 4; ++s) {
    int count = 0;
    for (const auto& [site, state] : clients) {
      if (!state.ran[s]) continue;
      ++count;
      report.client_mean.stage[s] += state.seconds[s];
      report.client_max.stage[s] = std::max(report.client_max.stage[s], state.seconds[s]);
    }
    if (count > 0) report.client_mean.stage[s] /= count;
  }
  for (const auto& [site, state] : clients) {
    report.client_sent_bytes_max = std::max(report.client_sent_bytes_max, state.sent);
    report.client_received_bytes_max = std::max(report.client_received_bytes_max, state.received);
  }
  report.server_received_bytes = server_received;
  return report;
}

}  // namespace fedattn::secagg
