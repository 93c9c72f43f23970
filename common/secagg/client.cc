#include "fedattn/secagg/client.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/crypto/aead.h"
#include "fedattn/crypto/shamir.h"
#include "fedattn/crypto/signature.h"
#include "fedattn/secagg/masking.h"
#include "transcript.h"

namespace fedattn::secagg {
namespace {

bool StrictlyAscending(const std::vector<SiteId>& ids) {
  return std::adjacent_find(ids.begin(), ids.end(), std::greater_equal<SiteId>()) == ids.end();
}

absl::Status Refused(absl::string_view why) {
  return absl::FailedPreconditionError(absl::StrCat("secagg client refuses: ", why));
}

}  // namespace

absl::StatusOr<std::unique_ptr<SecAggClient>> SecAggClient::Create(
    const SecAggConfig& config, SiteId self, EVP_PKEY* identity_key,
    std::shared_ptr<const PeerDirectory> peers, std::unique_ptr<crypto::RandomSource> random) {
  ASSIGN_OR_RETURN(SecAggConfig resolved, config.Resolved());
  if (std::find(resolved.sites.begin(), resolved.sites.end(), self) == resolved.sites.end()) {
    return absl::InvalidArgumentError(absl::StrCat("secagg: site ", self, " is not selected"));
  }
  if (identity_key == nullptr || EVP_PKEY_is_a(identity_key, "ED25519") != 1) {
    return absl::InvalidArgumentError("secagg: the identity key must be Ed25519");
  }
  if (!peers || !random) return absl::InvalidArgumentError("secagg: peers and random required");
  if (EVP_PKEY_up_ref(identity_key) != 1) return absl::InternalError("EVP_PKEY_up_ref failed");
  return std::unique_ptr<SecAggClient>(new SecAggClient(
      resolved, self, crypto::PKeyPtr(identity_key), std::move(peers), std::move(random)));
}

SecAggClient::SecAggClient(const SecAggConfig& config, SiteId self, crypto::PKeyPtr identity_key,
                           std::shared_ptr<const PeerDirectory> peers,
                           std::unique_ptr<crypto::RandomSource> random)
    : config_(config),
      self_(self),
      identity_key_(std::move(identity_key)),
      peers_(std::move(peers)),
      random_(std::move(random)) {}

absl::Status SecAggClient::CheckContext(absl::string_view job_id, uint64_t round) const {
  if (job_id != config_.job_id || round != config_.round) {
    return absl::InvalidArgumentError(
        absl::StrCat("secagg client ", self_, ": message for job '", job_id, "' round ", round,
                     ", expected job '", config_.job_id, "' round ", config_.round));
  }
  return absl::OkStatus();
}

absl::Status SecAggClient::Abort(absl::Status status) {
  stage_ = Stage::kAborted;
  // Forget every secret: nothing more can be revealed.
  encryption_key_.reset();
  mask_key_.reset();
  self_seed_ = crypto::Key32();
  neighbours_.clear();
  own_mask_key_share_.reset();
  own_self_seed_share_.reset();
  return status;
}

absl::StatusOr<KeyAdvertisement> SecAggClient::AdvertiseKeys() {
  if (stage_ != Stage::kAdvertiseKeys) {
    return absl::FailedPreconditionError(
        absl::StrCat("secagg client: AdvertiseKeys in stage ", StageName(stage_)));
  }
  ASSIGN_OR_RETURN(crypto::X25519PrivateKey c, crypto::X25519PrivateKey::Generate(*random_));
  ASSIGN_OR_RETURN(crypto::X25519PrivateKey s, crypto::X25519PrivateKey::Generate(*random_));
  RETURN_IF_ERROR(random_->Fill(self_seed_.mutable_span()));
  KeyAdvertisement advertisement;
  advertisement.job_id = config_.job_id;
  advertisement.round = config_.round;
  advertisement.sender = self_;
  advertisement.encryption_key = c.public_key();
  advertisement.mask_key = s.public_key();
  advertisement.self_mask_commitment =
      internal::SelfMaskCommitment(config_.job_id, config_.round, self_, self_seed_);
  ASSIGN_OR_RETURN(advertisement.signature,
                   crypto::SignEd25519(identity_key_.get(),
                                       internal::AdvertisementTranscript(advertisement).span()));
  encryption_key_.emplace(std::move(c));
  mask_key_.emplace(std::move(s));
  stage_ = Stage::kShareKeys;
  return advertisement;
}

absl::StatusOr<ShareKeysMessage> SecAggClient::ShareKeys(const NeighbourKeys& message) {
  if (stage_ != Stage::kShareKeys) {
    return absl::FailedPreconditionError(
        absl::StrCat("secagg client: ShareKeys in stage ", StageName(stage_)));
  }
  RETURN_IF_ERROR(CheckContext(message.job_id, message.round));
  if (message.recipient != self_) {
    return absl::InvalidArgumentError(
        absl::StrCat("secagg client ", self_, ": keys addressed to site ", message.recipient));
  }
  // Participants: ascending, selected, including us, at least t.
  const std::vector<SiteId>& participants = message.participants;
  if (!StrictlyAscending(participants)) return Abort(Refused("participant list not ascending"));
  for (SiteId site : participants) {
    if (std::find(config_.sites.begin(), config_.sites.end(), site) == config_.sites.end()) {
      return Abort(Refused(absl::StrCat("participant ", site, " was not selected")));
    }
  }
  if (!std::binary_search(participants.begin(), participants.end(), self_)) {
    return Abort(Refused("this site is not among the participants"));
  }
  if (participants.size() < config_.threshold) {
    return Abort(Refused(absl::StrCat("only ", participants.size(),
                                      " participants, fewer than the threshold t=",
                                      config_.threshold)));
  }
  ASSIGN_OR_RETURN(NeighbourGraph graph,
                   NeighbourGraph::Build(participants, config_.degree, config_.graph_seed,
                                         config_.job_id, config_.round));
  const std::span<const SiteId> expected = graph.Neighbours(self_);

  // Neighbours' advertisements: in the graph, once each, signed, with fresh keys.
  std::set<crypto::X25519PublicKey> keys = {encryption_key_->public_key(),
                                            mask_key_->public_key()};
  std::map<SiteId, const KeyAdvertisement*> received;
  for (const KeyAdvertisement& a : message.neighbours) {
    if (!std::binary_search(expected.begin(), expected.end(), a.sender)) {
      return Abort(Refused(absl::StrCat("keys of site ", a.sender, " who is not a neighbour")));
    }
    if (!received.emplace(a.sender, &a).second) {
      return Abort(Refused(absl::StrCat("duplicate keys for site ", a.sender)));
    }
    if (a.job_id != config_.job_id || a.round != config_.round) {
      return Abort(Refused(absl::StrCat("keys of site ", a.sender, " for another job or round")));
    }
    EVP_PKEY* identity = peers_->Find(a.sender);
    if (identity == nullptr) {
      return Abort(Refused(absl::StrCat("unsigned keys: site ", a.sender,
                                        " has no identity key")));
    }
    if (absl::Status s = crypto::VerifyEd25519(
            identity, internal::AdvertisementTranscript(a).span(), a.signature);
        !s.ok()) {
      return Abort(Refused(absl::StrCat("signature on the keys of site ", a.sender,
                                        " does not verify (substituted keys?)")));
    }
    if (!keys.insert(a.encryption_key).second || !keys.insert(a.mask_key).second) {
      return Abort(Refused(absl::StrCat("duplicate public key advertised by site ", a.sender)));
    }
  }
  if (received.size() != expected.size()) {
    return Abort(Refused(absl::StrCat("keys for ", received.size(), " of ", expected.size(),
                                      " neighbours")));
  }
  if (expected.size() + 1 < config_.threshold) {
    return Abort(Refused(absl::StrCat("neighbourhood of ", expected.size() + 1,
                                      " sites is smaller than t=", config_.threshold)));
  }

  // Shamir-share s^SK and b over the neighbourhood and ourselves, at points id + 1.
  std::vector<uint32_t> xs;
  for (SiteId v : expected) xs.push_back(v + 1);
  xs.push_back(self_ + 1);
  ASSIGN_OR_RETURN(const crypto::Key32 mask_private, mask_key_->RawPrivate());
  ASSIGN_OR_RETURN(std::vector<crypto::ShamirShare> mask_shares,
                   crypto::ShamirSplit(mask_private.span(), config_.threshold, xs, *random_));
  ASSIGN_OR_RETURN(std::vector<crypto::ShamirShare> seed_shares,
                   crypto::ShamirSplit(self_seed_.span(), config_.threshold, xs, *random_));

  ShareKeysMessage out;
  out.job_id = config_.job_id;
  out.round = config_.round;
  out.sender = self_;
  for (size_t i = 0; i < expected.size(); ++i) {
    const SiteId v = expected[i];
    Neighbour neighbour;
    neighbour.advertisement = *received[v];
    ASSIGN_OR_RETURN(neighbour.share_key,
                     internal::ShareEncryptionKey(*encryption_key_,
                                                  neighbour.advertisement.encryption_key,
                                                  config_.job_id, config_.round, self_, v));
    crypto::SecretBytes<internal::kSharePlaintextBytes> plaintext;
    crypto::EncodeShamirShare(mask_shares[i],
                              std::span<uint8_t, crypto::kShamirShareBytes>(
                                  plaintext.data(), crypto::kShamirShareBytes));
    crypto::EncodeShamirShare(seed_shares[i],
                              std::span<uint8_t, crypto::kShamirShareBytes>(
                                  plaintext.data() + crypto::kShamirShareBytes,
                                  crypto::kShamirShareBytes));
    const auto nonce = internal::ShareNonce(self_, v);
    EncryptedShare share;
    share.sender = self_;
    share.recipient = v;
    ASSIGN_OR_RETURN(share.ciphertext,
                     crypto::Aes256GcmSeal(neighbour.share_key.span(), nonce,
                                           internal::ShareAad(config_.job_id, config_.round,
                                                              self_, v)
                                               .span(),
                                           plaintext.span()));
    out.shares.push_back(std::move(share));
    neighbours_.emplace(v, std::move(neighbour));
  }
  own_mask_key_share_ = mask_shares.back();
  own_self_seed_share_ = seed_shares.back();
  graph_.emplace(std::move(graph));
  stage_ = Stage::kMaskedInput;
  return out;
}

absl::StatusOr<MaskedInput> SecAggClient::MaskInput(const SharesForSite& message,
                                                    std::vector<uint32_t> input) {
  if (stage_ != Stage::kMaskedInput) {
    return absl::FailedPreconditionError(
        absl::StrCat("secagg client: MaskInput in stage ", StageName(stage_)));
  }
  RETURN_IF_ERROR(CheckContext(message.job_id, message.round));
  if (message.recipient != self_) {
    return absl::InvalidArgumentError(
        absl::StrCat("secagg client ", self_, ": shares addressed to site ", message.recipient));
  }
  if (input.size() != config_.vector_length) {
    return absl::InvalidArgumentError(absl::StrCat("secagg client: input has ", input.size(),
                                                   " words, expected ", config_.vector_length));
  }
  // Open every share now, so that tampering is detected before we reveal a masked input.
  std::set<SiteId> senders;
  for (const EncryptedShare& share : message.shares) {
    auto it = neighbours_.find(share.sender);
    if (it == neighbours_.end()) {
      return Abort(Refused(absl::StrCat("shares from site ", share.sender,
                                        " who is not a neighbour")));
    }
    if (share.recipient != self_ || !senders.insert(share.sender).second) {
      return Abort(Refused(absl::StrCat("misaddressed or repeated shares from site ",
                                        share.sender)));
    }
    auto opened = crypto::Aes256GcmOpen(
        it->second.share_key.span(), internal::ShareNonce(share.sender, self_),
        internal::ShareAad(config_.job_id, config_.round, share.sender, self_).span(),
        share.ciphertext);
    if (!opened.ok() || opened->size() != internal::kSharePlaintextBytes) {
      return Abort(Refused(absl::StrCat("shares from site ", share.sender,
                                        " do not decrypt (tampered in transit)")));
    }
    const std::span<const uint8_t> plain(*opened);
    auto mask_share = crypto::DecodeShamirShare(plain.first(crypto::kShamirShareBytes));
    auto seed_share = crypto::DecodeShamirShare(plain.last(crypto::kShamirShareBytes));
    OPENSSL_cleanse(opened->data(), opened->size());
    if (!mask_share.ok() || !seed_share.ok() || mask_share->x != self_ + 1 ||
        seed_share->x != self_ + 1) {
      return Abort(Refused(absl::StrCat("malformed shares from site ", share.sender)));
    }
    it->second.mask_key_share = *mask_share;
    it->second.self_seed_share = *seed_share;
  }
  if (senders.size() + 1 < config_.threshold) {
    return Abort(Refused(absl::StrCat("only ", senders.size() + 1,
                                      " sites of this neighbourhood remain, fewer than t=",
                                      config_.threshold)));
  }

  // y = x + PRG(b_u) + Σ_{v in N(u) ∩ U2} ±PRG(s_uv)  (Bonawitz §4, round 2).
  std::vector<MaskStream> streams;
  streams.reserve(senders.size() + 1);
  ASSIGN_OR_RETURN(crypto::Key16 self_key,
                   SelfMaskKey(self_seed_, config_.job_id, config_.round, self_));
  streams.push_back(MaskStream{std::move(self_key), false});
  for (SiteId v : senders) {
    ASSIGN_OR_RETURN(const crypto::Key32 shared,
                     mask_key_->Agree(neighbours_.at(v).advertisement.mask_key));
    ASSIGN_OR_RETURN(crypto::Key16 key,
                     PairwiseMaskKey(shared, config_.job_id, config_.round, self_, v));
    streams.push_back(MaskStream{std::move(key), !AddsPairwiseMask(self_, v)});
  }
  MaskedInput out;
  out.job_id = config_.job_id;
  out.round = config_.round;
  out.sender = self_;
  out.masked = std::move(input);  // masked in place: no copy of d words
  RETURN_IF_ERROR(ApplyMasks(streams, out.masked));
  // Neighbours that sent no shares never masked with us: their shares would not exist.
  for (auto it = neighbours_.begin(); it != neighbours_.end();) {
    it = senders.count(it->first) ? std::next(it) : neighbours_.erase(it);
  }
  stage_ = Stage::kUnmask;
  return out;
}

absl::StatusOr<UnmaskResponse> SecAggClient::Unmask(const UnmaskRequest& message) {
  if (stage_ != Stage::kUnmask && stage_ != Stage::kDone) {
    return absl::FailedPreconditionError(
        absl::StrCat("secagg client: Unmask in stage ", StageName(stage_)));
  }
  RETURN_IF_ERROR(CheckContext(message.job_id, message.round));
  const std::vector<SiteId>& survivors = message.survivors;
  const std::vector<SiteId>& dropped = message.dropped;
  if (!StrictlyAscending(survivors) || !StrictlyAscending(dropped)) {
    return Abort(Refused("survivor or dropped list not ascending or has repeats"));
  }
  std::vector<SiteId> both;
  std::set_intersection(survivors.begin(), survivors.end(), dropped.begin(), dropped.end(),
                        std::back_inserter(both));
  if (!both.empty()) {
    return Abort(Refused(absl::StrCat("site ", both.front(),
                                      " is listed both as a survivor and as dropped")));
  }
  if (survivors.size() < config_.threshold) {
    return Abort(Refused(absl::StrCat("only ", survivors.size(),
                                      " survivors, fewer than the threshold t=",
                                      config_.threshold)));
  }
  if (!std::binary_search(survivors.begin(), survivors.end(), self_)) {
    return Abort(Refused("this site is not listed as a survivor"));
  }
  // Decide every reveal before revealing anything: never both kinds for one peer.
  std::vector<std::pair<Neighbour*, ShareKind>> plan;
  for (auto& [v, neighbour] : neighbours_) {
    std::optional<ShareKind> kind;
    if (std::binary_search(survivors.begin(), survivors.end(), v)) kind = ShareKind::kSelfMaskSeed;
    if (std::binary_search(dropped.begin(), dropped.end(), v)) kind = ShareKind::kMaskKey;
    if (!kind) continue;
    if (neighbour.revealed && *neighbour.revealed != *kind) {
      return Abort(Refused(absl::StrCat("would reveal both kinds of share for site ", v)));
    }
    plan.emplace_back(&neighbour, *kind);
  }
  UnmaskResponse out;
  out.job_id = config_.job_id;
  out.round = config_.round;
  out.sender = self_;
  out.shares.push_back(RevealedShare{self_, ShareKind::kSelfMaskSeed, *own_self_seed_share_});
  for (auto& [neighbour, kind] : plan) {
    neighbour->revealed = kind;
    out.shares.push_back(RevealedShare{
        neighbour->advertisement.sender, kind,
        kind == ShareKind::kSelfMaskSeed ? *neighbour->self_seed_share
                                         : *neighbour->mask_key_share});
  }
  stage_ = Stage::kDone;
  return out;
}

}  // namespace fedattn::secagg
