// The server (coordinator) side of SecAgg+ as a pure state machine. Bonawitz et al., CCS 2017,
// §4; Bell et al., CCS 2020, §3. The transport calls Handle*() for each message that arrives in
// a stage and Finish*() when the stage closes (all replies in, or its deadline passed); a site
// that did not reply by then has dropped out at that stage.
//
// The server only ever holds masked vectors and the final sum. A Finish*() with fewer than t
// sites left aborts the round (FAILED_PRECONDITION naming the stage and the counts); after an
// abort every call fails and no sum is produced. A bad message (wrong job, round or stage,
// unknown or repeated sender, bad signature, wrong length) is refused by Handle*() and does not
// abort the round: the sender is then treated as dropped.
//
// Thread-compatible: the transport serialises calls.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "fedattn/secagg/config.h"
#include "fedattn/secagg/graph.h"
#include "fedattn/secagg/identity.h"
#include "fedattn/secagg/messages.h"

namespace fedattn::secagg {

// A site that left the round, and the stage whose message it never sent.
struct Dropout {
  SiteId site = 0;
  Stage stage = Stage::kAdvertiseKeys;
};

struct AggregateResult {
  std::vector<uint32_t> sum;          // Σ_{u in contributors} x_u mod 2^32
  std::vector<SiteId> contributors;   // U3, ascending
  std::vector<Dropout> dropouts;      // the failed sites, as data for the aggregation step
  uint64_t regenerated_masks = 0;     // masks the server expanded: self + dropped pairwise
};

class SecAggServer {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SecAggServer>> Create(
      const SecAggConfig& config, std::shared_ptr<const PeerDirectory> peers);

  [[nodiscard]] absl::Status HandleAdvertisement(const KeyAdvertisement& message);
  // One NeighbourKeys per participant.
  [[nodiscard]] absl::StatusOr<std::vector<NeighbourKeys>> FinishAdvertise();

  [[nodiscard]] absl::Status HandleShareKeys(const ShareKeysMessage& message);
  // One SharesForSite per site in U2.
  [[nodiscard]] absl::StatusOr<std::vector<SharesForSite>> FinishShareKeys();

  // Adds the masked vector into the running sum (the vector is not kept).
  [[nodiscard]] absl::Status HandleMaskedInput(const MaskedInput& message);
  // The same for a vector the transport holds elsewhere (a spooled upload, mapped from disk).
  [[nodiscard]] absl::Status HandleMaskedInput(absl::string_view job_id, uint64_t round, SiteId sender,
                                               std::span<const uint32_t> masked);
  // The request to send to every survivor.
  [[nodiscard]] absl::StatusOr<UnmaskRequest> FinishMaskedInput();

  [[nodiscard]] absl::Status HandleUnmask(const UnmaskResponse& message);
  // Reconstructs the survivors' self-mask seeds and the dropped sites' mask keys (checking each
  // against its commitment or public key: DATA_LOSS names a site whose shares were tampered),
  // removes their masks and returns the sum. FAILED_PRECONDITION if some secret has fewer than
  // t shares.
  [[nodiscard]] absl::StatusOr<AggregateResult> FinishUnmask();

  Stage stage() const { return stage_; }

 private:
  SecAggServer(const SecAggConfig& config, std::shared_ptr<const PeerDirectory> peers);
  absl::Status CheckMessage(Stage expected, absl::string_view job_id, uint64_t round,
                            SiteId sender, const std::set<SiteId>& allowed,
                            const std::set<SiteId>& already) const;
  absl::Status Abort(absl::Status status);
  void RecordDropouts(const std::set<SiteId>& before, const std::set<SiteId>& after, Stage stage);

  SecAggConfig config_;
  std::shared_ptr<const PeerDirectory> peers_;
  Stage stage_ = Stage::kAdvertiseKeys;
  std::set<SiteId> selected_;
  std::map<SiteId, KeyAdvertisement> advertised_;                  // U1
  std::optional<NeighbourGraph> graph_;
  std::map<SiteId, std::vector<EncryptedShare>> shares_by_sender_; // U2
  std::set<SiteId> u1_, u2_, u3_, responded_;
  std::vector<uint32_t> sum_;
  std::map<SiteId, std::vector<crypto::ShamirShare>> self_seed_shares_;
  std::map<SiteId, std::vector<crypto::ShamirShare>> mask_key_shares_;
  std::vector<Dropout> dropouts_;
};

}  // namespace fedattn::secagg
