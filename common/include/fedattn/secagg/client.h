// The client (site) side of SecAgg+ as a pure state machine: each call consumes the server's
// message for the stage and returns the client's reply; no I/O. Bonawitz et al., CCS 2017, §4
// (Fig. 4 rounds 0-2 and 4) with the sparse graph of Bell et al., CCS 2020, §3.
//
// Refusals. The client returns an error and aborts (it sends nothing more, reveals nothing) on:
// a neighbour list that does not match the graph, an advertisement whose signature does not
// verify or whose site has no identity key (unsigned keys), two advertisements for one site or
// repeated public keys (duplicate keys), a share that does not decrypt (tampered), an unmask
// request whose survivor and dropped lists overlap, that has fewer than t survivors, that does
// not list this client as a survivor, or that would make it reveal both kinds of share for one
// peer. A message for another job, round or recipient is refused with INVALID_ARGUMENT without
// aborting (it may be stale). A call out of order is FAILED_PRECONDITION.
//
// Thread-compatible: one thread (or one transport strand) drives a client.
#pragma once

#include <openssl/evp.h>

#include <map>
#include <memory>
#include <optional>
#include <span>

#include "absl/status/statusor.h"
#include "fedattn/crypto/prg.h"
#include "fedattn/crypto/x25519.h"
#include "fedattn/secagg/config.h"
#include "fedattn/secagg/graph.h"
#include "fedattn/secagg/identity.h"
#include "fedattn/secagg/messages.h"

namespace fedattn::secagg {

class SecAggClient {
 public:
  // `identity_key` is this site's Ed25519 private key (a reference is taken). `peers` holds
  // every site's identity public key. `random` supplies all the client's randomness.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SecAggClient>> Create(
      const SecAggConfig& config, SiteId self, EVP_PKEY* identity_key,
      std::shared_ptr<const PeerDirectory> peers, std::unique_ptr<crypto::RandomSource> random);

  // Stage 0: fresh key pairs and self-mask seed; the signed advertisement.
  [[nodiscard]] absl::StatusOr<KeyAdvertisement> AdvertiseKeys();
  // Stage 1: checks the neighbours' keys and signatures, then shares s^SK and b among the
  // neighbourhood (t-of-(k+1)), each share sealed for its holder.
  [[nodiscard]] absl::StatusOr<ShareKeysMessage> ShareKeys(const NeighbourKeys& message);
  // Stage 2: opens the shares received, then masks `input` (d words, already encoded) in place
  // and returns it inside the message, without a copy: y = x + PRG(b) + Σ_{v in N∩U2}
  // ±PRG(s_uv). Pass the encoder's buffer with std::move; an lvalue is copied.
  [[nodiscard]] absl::StatusOr<MaskedInput> MaskInput(const SharesForSite& message,
                                                      std::vector<uint32_t> input);
  // Stage 3: reveals b-shares of surviving and s^SK-shares of dropped neighbours. May be called
  // again with a consistent request (a retransmission).
  [[nodiscard]] absl::StatusOr<UnmaskResponse> Unmask(const UnmaskRequest& message);

  Stage stage() const { return stage_; }
  SiteId id() const { return self_; }

 private:
  struct Neighbour {
    KeyAdvertisement advertisement;
    crypto::Key32 share_key;                       // AES-256-GCM key for shares with this peer
    std::optional<crypto::ShamirShare> mask_key_share;   // its s^SK share, held by us
    std::optional<crypto::ShamirShare> self_seed_share;  // its b share, held by us
    std::optional<ShareKind> revealed;
  };

  SecAggClient(const SecAggConfig& config, SiteId self, crypto::PKeyPtr identity_key,
               std::shared_ptr<const PeerDirectory> peers,
               std::unique_ptr<crypto::RandomSource> random);
  absl::Status CheckContext(absl::string_view job_id, uint64_t round) const;
  absl::Status Abort(absl::Status status);

  SecAggConfig config_;
  SiteId self_;
  crypto::PKeyPtr identity_key_;
  std::shared_ptr<const PeerDirectory> peers_;
  std::unique_ptr<crypto::RandomSource> random_;
  Stage stage_ = Stage::kAdvertiseKeys;

  std::optional<crypto::X25519PrivateKey> encryption_key_;  // c_u
  std::optional<crypto::X25519PrivateKey> mask_key_;        // s_u
  crypto::Key32 self_seed_;                                 // b_u
  std::optional<NeighbourGraph> graph_;
  std::map<SiteId, Neighbour> neighbours_;
  std::optional<crypto::ShamirShare> own_mask_key_share_;
  std::optional<crypto::ShamirShare> own_self_seed_share_;
};

}  // namespace fedattn::secagg
