#include "fedattn/secagg/server.h"

#include <openssl/crypto.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/crypto/shamir.h"
#include "fedattn/crypto/signature.h"
#include "fedattn/secagg/masking.h"
#include "transcript.h"

namespace fedattn::secagg {
namespace {

std::vector<SiteId> Sorted(const std::set<SiteId>& ids) { return {ids.begin(), ids.end()}; }

}  // namespace

absl::StatusOr<std::unique_ptr<SecAggServer>> SecAggServer::Create(
    const SecAggConfig& config, std::shared_ptr<const PeerDirectory> peers) {
  ASSIGN_OR_RETURN(SecAggConfig resolved, config.Resolved());
  if (!peers) return absl::InvalidArgumentError("secagg server: a peer directory is required");
  return std::unique_ptr<SecAggServer>(new SecAggServer(resolved, std::move(peers)));
}

SecAggServer::SecAggServer(const SecAggConfig& config, std::shared_ptr<const PeerDirectory> peers)
    : config_(config), peers_(std::move(peers)), selected_(config.sites.begin(), config.sites.end()) {}

absl::Status SecAggServer::Abort(absl::Status status) {
  stage_ = Stage::kAborted;
  sum_.clear();  // masked material only, but nothing of the round is kept
  sum_.shrink_to_fit();
  self_seed_shares_.clear();
  mask_key_shares_.clear();
  return status;
}

absl::Status SecAggServer::CheckMessage(Stage expected, absl::string_view job_id, uint64_t round,
                                        SiteId sender, const std::set<SiteId>& allowed,
                                        const std::set<SiteId>& already) const {
  if (stage_ != expected) {
    return absl::FailedPreconditionError(absl::StrCat(
        "secagg server: a ", StageName(expected), " message from site ", sender,
        " arrived in stage ", StageName(stage_)));
  }
  if (job_id != config_.job_id || round != config_.round) {
    return absl::InvalidArgumentError(absl::StrCat("secagg server: message from site ", sender,
                                                   " for job '", job_id, "' round ", round));
  }
  if (allowed.count(sender) == 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("secagg server: site ", sender, " is not a participant of this stage"));
  }
  if (already.count(sender) != 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("secagg server: site ", sender, " already sent its ", StageName(expected),
                     " message"));
  }
  return absl::OkStatus();
}

void SecAggServer::RecordDropouts(const std::set<SiteId>& before, const std::set<SiteId>& after,
                                  Stage stage) {
  for (SiteId site : before) {
    if (after.count(site) == 0) dropouts_.push_back(Dropout{site, stage});
  }
}

absl::Status SecAggServer::HandleAdvertisement(const KeyAdvertisement& message) {
  RETURN_IF_ERROR(CheckMessage(Stage::kAdvertiseKeys, message.job_id, message.round,
                               message.sender, selected_, u1_));
  EVP_PKEY* identity = peers_->Find(message.sender);
  if (identity == nullptr) {
    return absl::UnauthenticatedError(
        absl::StrCat("secagg server: site ", message.sender, " has no identity key"));
  }
  if (absl::Status s = crypto::VerifyEd25519(
          identity, internal::AdvertisementTranscript(message).span(), message.signature);
      !s.ok()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "secagg server: signature on the keys of site ", message.sender, " does not verify"));
  }
  if (message.encryption_key == message.mask_key) {
    return absl::InvalidArgumentError(
        absl::StrCat("secagg server: site ", message.sender, " advertised one key twice"));
  }
  for (const auto& [site, other] : advertised_) {
    for (const auto* key : {&message.encryption_key, &message.mask_key}) {
      if (*key == other.encryption_key || *key == other.mask_key) {
        return absl::InvalidArgumentError(absl::StrCat(
            "secagg server: site ", message.sender, " advertised a key of site ", site));
      }
    }
  }
  advertised_.emplace(message.sender, message);
  u1_.insert(message.sender);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<NeighbourKeys>> SecAggServer::FinishAdvertise() {
  if (stage_ != Stage::kAdvertiseKeys) {
    return absl::FailedPreconditionError(
        absl::StrCat("secagg server: FinishAdvertise in stage ", StageName(stage_)));
  }
  RecordDropouts(selected_, u1_, Stage::kAdvertiseKeys);
  if (u1_.size() < config_.threshold) {
    return Abort(absl::FailedPreconditionError(absl::StrCat(
        "secagg round aborted at advertise-keys: ", u1_.size(), " of ", selected_.size(),
        " sites remain, fewer than the threshold t=", config_.threshold,
        "; nothing was revealed")));
  }
  const std::vector<SiteId> participants = Sorted(u1_);
  ASSIGN_OR_RETURN(NeighbourGraph graph,
                   NeighbourGraph::Build(participants, config_.degree, config_.graph_seed,
                                         config_.job_id, config_.round));
  std::vector<NeighbourKeys> out;
  out.reserve(participants.size());
  for (SiteId u : participants) {
    NeighbourKeys keys;
    keys.job_id = config_.job_id;
    keys.round = config_.round;
    keys.recipient = u;
    keys.participants = participants;
    for (SiteId v : graph.Neighbours(u)) keys.neighbours.push_back(advertised_.at(v));
    out.push_back(std::move(keys));
  }
  graph_.emplace(std::move(graph));
  stage_ = Stage::kShareKeys;
  return out;
}

absl::Status SecAggServer::HandleShareKeys(const ShareKeysMessage& message) {
  RETURN_IF_ERROR(CheckMessage(Stage::kShareKeys, message.job_id, message.round, message.sender,
                               u1_, u2_));
  const std::span<const SiteId> neighbours = graph_->Neighbours(message.sender);
  std::set<SiteId> recipients;
  for (const EncryptedShare& share : message.shares) {
    if (share.sender != message.sender ||
        !std::binary_search(neighbours.begin(), neighbours.end(), share.recipient) ||
        !recipients.insert(share.recipient).second ||
        share.ciphertext.size() != internal::kShareCiphertextBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "secagg server: malformed, misaddressed or repeated share from site ", message.sender));
    }
  }
  if (recipients.size() != neighbours.size()) {
    return absl::InvalidArgumentError(absl::StrCat("secagg server: site ", message.sender,
                                                   " sent shares for ", recipients.size(), " of ",
                                                   neighbours.size(), " neighbours"));
  }
  shares_by_sender_[message.sender] = message.shares;
  u2_.insert(message.sender);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SharesForSite>> SecAggServer::FinishShareKeys() {
  if (stage_ != Stage::kShareKeys) {
    return absl::FailedPreconditionError(
        absl::StrCat("secagg server: FinishShareKeys in stage ", StageName(stage_)));
  }
  RecordDropouts(u1_, u2_, Stage::kShareKeys);
  if (u2_.size() < config_.threshold) {
    return Abort(absl::FailedPreconditionError(absl::StrCat(
        "secagg round aborted at share-keys: ", u2_.size(), " sites remain, fewer than the "
        "threshold t=", config_.threshold, "; nothing was revealed")));
  }
  std::map<SiteId, SharesForSite> routed;
  for (SiteId v : u2_) {
    SharesForSite& m = routed[v];
    m.job_id = config_.job_id;
    m.round = config_.round;
    m.recipient = v;
  }
  for (auto& [sender, shares] : shares_by_sender_) {
    for (EncryptedShare& share : shares) {
      auto it = routed.find(share.recipient);
      if (it != routed.end()) it->second.shares.push_back(std::move(share));
    }
  }
  shares_by_sender_.clear();
  std::vector<SharesForSite> out;
  out.reserve(routed.size());
  for (auto& [v, m] : routed) out.push_back(std::move(m));
  stage_ = Stage::kMaskedInput;
  return out;
}

absl::Status SecAggServer::HandleMaskedInput(const MaskedInput& message) {
  return HandleMaskedInput(message.job_id, message.round, message.sender, message.masked);
}

absl::Status SecAggServer::HandleMaskedInput(absl::string_view job_id, uint64_t round, SiteId sender,
                                             std::span<const uint32_t> masked) {
  RETURN_IF_ERROR(CheckMessage(Stage::kMaskedInput, job_id, round, sender, u2_, u3_));
  if (masked.size() != config_.vector_length) {
    return absl::InvalidArgumentError(absl::StrCat("secagg server: masked input of site ", sender, " has ",
                                                   masked.size(), " words, expected ", config_.vector_length));
  }
  if (sum_.empty()) {
    sum_.assign(masked.begin(), masked.end());
  } else {
    AddWords(sum_, masked);
  }
  u3_.insert(sender);
  return absl::OkStatus();
}

absl::StatusOr<UnmaskRequest> SecAggServer::FinishMaskedInput() {
  if (stage_ != Stage::kMaskedInput) {
    return absl::FailedPreconditionError(
        absl::StrCat("secagg server: FinishMaskedInput in stage ", StageName(stage_)));
  }
  RecordDropouts(u2_, u3_, Stage::kMaskedInput);
  if (u3_.size() < config_.threshold) {
    return Abort(absl::FailedPreconditionError(absl::StrCat(
        "secagg round aborted at masked-input: ", u3_.size(), " sites remain, fewer than the "
        "threshold t=", config_.threshold, "; nothing was revealed")));
  }
  // Every secret we will need must have t holders among the survivors, or we stop here before
  // asking anyone to reveal anything.
  for (SiteId u : u2_) {
    uint32_t holders = u3_.count(u) ? 1 : 0;
    for (SiteId v : graph_->Neighbours(u)) holders += (u2_.count(v) && u3_.count(v)) ? 1 : 0;
    if (holders < config_.threshold) {
      return Abort(absl::FailedPreconditionError(absl::StrCat(
          "secagg round aborted at masked-input: only ", holders, " holders of site ", u,
          "'s shares remain, fewer than t=", config_.threshold, "; nothing was revealed")));
    }
  }
  UnmaskRequest request;
  request.job_id = config_.job_id;
  request.round = config_.round;
  request.survivors = Sorted(u3_);
  for (SiteId u : u2_) {
    if (!u3_.count(u)) request.dropped.push_back(u);
  }
  stage_ = Stage::kUnmask;
  return request;
}

absl::Status SecAggServer::HandleUnmask(const UnmaskResponse& message) {
  RETURN_IF_ERROR(CheckMessage(Stage::kUnmask, message.job_id, message.round, message.sender,
                               u3_, responded_));
  std::set<std::pair<SiteId, ShareKind>> seen;
  for (const RevealedShare& r : message.shares) {
    const bool own_or_neighbour =
        r.owner == message.sender || graph_->AreNeighbours(message.sender, r.owner);
    const bool survivor = u3_.count(r.owner) != 0;
    const bool dropped = !survivor && u2_.count(r.owner) != 0;
    const bool kind_ok = (survivor && r.kind == ShareKind::kSelfMaskSeed) ||
                         (dropped && r.kind == ShareKind::kMaskKey);
    if (!own_or_neighbour || !kind_ok || r.share.x != message.sender + 1 ||
        !seen.emplace(r.owner, r.kind).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "secagg server: unexpected share of site ", r.owner, " from site ", message.sender));
    }
  }
  for (const RevealedShare& r : message.shares) {
    (r.kind == ShareKind::kSelfMaskSeed ? self_seed_shares_ : mask_key_shares_)[r.owner]
        .push_back(r.share);
  }
  responded_.insert(message.sender);
  return absl::OkStatus();
}

absl::StatusOr<AggregateResult> SecAggServer::FinishUnmask() {
  if (stage_ != Stage::kUnmask) {
    return absl::FailedPreconditionError(
        absl::StrCat("secagg server: FinishUnmask in stage ", StageName(stage_)));
  }
  RecordDropouts(u3_, responded_, Stage::kUnmask);
  if (responded_.size() < config_.threshold) {
    return Abort(absl::FailedPreconditionError(absl::StrCat(
        "secagg round aborted at unmask: ", responded_.size(), " sites answered, fewer than "
        "the threshold t=", config_.threshold)));
  }
  const uint32_t t = config_.threshold;
  std::vector<MaskStream> streams;
  // Survivors' self-masks: b_u from t shares, checked against the signed commitment.
  for (SiteId u : u3_) {
    const auto& shares = self_seed_shares_[u];
    if (shares.size() < t) {
      return Abort(absl::FailedPreconditionError(
          absl::StrCat("secagg round aborted at unmask: ", shares.size(), " shares of site ", u,
                       "'s self-mask seed, fewer than t=", t)));
    }
    auto seed = crypto::ShamirCombine(shares, t);
    if (!seed.ok()) {
      return Abort(absl::DataLossError(absl::StrCat("secagg: self-mask seed of site ", u, ": ",
                                                    seed.status().message())));
    }
    const crypto::Sha256Digest commitment =
        internal::SelfMaskCommitment(config_.job_id, config_.round, u, *seed);
    if (CRYPTO_memcmp(commitment.data(), advertised_.at(u).self_mask_commitment.data(),
                      commitment.size()) != 0) {
      return Abort(absl::DataLossError(absl::StrCat(
          "secagg: shares of site ", u, "'s self-mask seed do not match its commitment "
          "(tampered)")));
    }
    ASSIGN_OR_RETURN(crypto::Key16 key, SelfMaskKey(*seed, config_.job_id, config_.round, u));
    streams.push_back(MaskStream{std::move(key), true});
  }
  // Dropped sites' pairwise masks with survivors: s_u^SK from t shares, checked against s_u^PK.
  for (SiteId u : u2_) {
    if (u3_.count(u)) continue;
    const auto& shares = mask_key_shares_[u];
    if (shares.size() < t) {
      return Abort(absl::FailedPreconditionError(
          absl::StrCat("secagg round aborted at unmask: ", shares.size(), " shares of site ", u,
                       "'s mask key, fewer than t=", t)));
    }
    auto raw = crypto::ShamirCombine(shares, t);
    if (!raw.ok()) {
      return Abort(absl::DataLossError(
          absl::StrCat("secagg: mask key of site ", u, ": ", raw.status().message())));
    }
    ASSIGN_OR_RETURN(crypto::X25519PrivateKey key, crypto::X25519PrivateKey::FromRaw(raw->span()));
    const crypto::X25519PublicKey& advertised = advertised_.at(u).mask_key;
    if (CRYPTO_memcmp(key.public_key().data(), advertised.data(), advertised.size()) != 0) {
      return Abort(absl::DataLossError(absl::StrCat(
          "secagg: shares of site ", u, "'s mask key do not match its public key (tampered)")));
    }
    for (SiteId v : graph_->Neighbours(u)) {
      if (!u3_.count(v)) continue;
      ASSIGN_OR_RETURN(const crypto::Key32 shared, key.Agree(advertised_.at(v).mask_key));
      ASSIGN_OR_RETURN(crypto::Key16 mask_key,
                       PairwiseMaskKey(shared, config_.job_id, config_.round, u, v));
      // v added +PRG when v < u and -PRG otherwise; undo what v did.
      streams.push_back(MaskStream{std::move(mask_key), AddsPairwiseMask(v, u)});
    }
  }
  RETURN_IF_ERROR(ApplyMasks(streams, sum_));
  AggregateResult result;
  result.sum = std::move(sum_);
  result.contributors = Sorted(u3_);
  result.dropouts = dropouts_;
  result.regenerated_masks = streams.size();
  self_seed_shares_.clear();
  mask_key_shares_.clear();
  stage_ = Stage::kDone;
  return result;
}

}  // namespace fedattn::secagg
