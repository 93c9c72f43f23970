#include "fedattn/secagg/config.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace fedattn::secagg {
namespace {

// P[Binomial(m, p) < t], summed in log space (lgamma) to stay finite for large m.
double BinomialLowerTail(uint32_t m, double p, uint32_t t) {
  if (t == 0) return 0.0;
  if (p <= 0.0) return 1.0;
  if (p >= 1.0) return t > m ? 1.0 : 0.0;
  double total = 0.0;
  for (uint32_t j = 0; j < t && j <= m; ++j) {
    const double log_term = std::lgamma(m + 1.0) - std::lgamma(j + 1.0) -
                            std::lgamma(m - j + 1.0) + j * std::log(p) +
                            (m - j) * std::log1p(-p);
    total += std::exp(log_term);
  }
  return std::min(1.0, total);
}

}  // namespace

absl::string_view StageName(Stage stage) {
  switch (stage) {
    case Stage::kAdvertiseKeys: return "advertise-keys";
    case Stage::kShareKeys: return "share-keys";
    case Stage::kMaskedInput: return "masked-input";
    case Stage::kUnmask: return "unmask";
    case Stage::kDone: return "done";
    case Stage::kAborted: return "aborted";
  }
  return "unknown";
}

uint32_t EffectiveDegree(uint32_t configured_degree, uint32_t participants) {
  if (participants <= 1) return 0;
  uint32_t k = std::min(configured_degree, participants - 1);
  // A k-regular graph on m vertices needs k·m even (handshake lemma).
  if (k % 2 == 1 && participants % 2 == 1) ++k;
  return k;
}

double AbortProbability(uint32_t num_sites, uint32_t degree, uint32_t threshold, double dropout) {
  const uint32_t k = EffectiveDegree(degree, num_sites);
  const double one_neighbourhood = BinomialLowerTail(k + 1, 1.0 - dropout, threshold);
  if (k + 1 >= num_sites) return one_neighbourhood;  // complete graph: one event
  return std::min(1.0, num_sites * one_neighbourhood);
}

absl::Status SecAggConfig::Validate() const {
  if (job_id.empty()) return absl::InvalidArgumentError("secagg: job_id is required");
  if (sites.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("secagg: at least 2 sites are needed, got ", sites.size()));
  }
  if (sites.size() >= std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError("secagg: too many sites");
  }
  std::set<SiteId> seen;
  for (SiteId site : sites) {
    if (site == std::numeric_limits<SiteId>::max()) {
      return absl::InvalidArgumentError("secagg: site id 2^32-1 is reserved (Shamir point 0)");
    }
    if (!seen.insert(site).second) {
      return absl::InvalidArgumentError(absl::StrCat("secagg: site ", site, " listed twice"));
    }
  }
  if (vector_length == 0) return absl::InvalidArgumentError("secagg: vector_length must be > 0");
  if (vector_length > (uint64_t{1} << 36)) {
    return absl::InvalidArgumentError("secagg: vector_length above 2^36 words");
  }
  if (!(max_dropout_fraction >= 0.0 && max_dropout_fraction < 1.0)) {
    return absl::InvalidArgumentError("secagg: max_dropout_fraction must be in [0, 1)");
  }
  if (!(max_abort_probability > 0.0 && max_abort_probability <= 1.0)) {
    return absl::InvalidArgumentError("secagg: max_abort_probability must be in (0, 1]");
  }
  const uint32_t n = static_cast<uint32_t>(sites.size());
  const uint32_t configured = degree == 0 ? n - 1 : degree;
  if (configured > n - 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("secagg: degree k=", configured, " exceeds n-1=", n - 1));
  }
  const uint32_t k = EffectiveDegree(configured, n);
  const uint32_t t = threshold == 0 ? (k + 1) / 2 + 1 : threshold;
  if (t > k + 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "secagg: threshold t=", t, " exceeds the k+1=", k + 1,
        " holders of each site's shares: no secret could ever be reconstructed"));
  }
  if (2 * uint64_t{t} <= k + 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "secagg: threshold t=", t, " is not a strict majority of the k+1=", k + 1,
        " holders of each site's shares (t <= ", k + 1,
        "/2): the server could obtain both the self-mask and the mask-key shares of one site "
        "and unmask it alone (Bonawitz et al. 2017, §4: t > n/2)"));
  }
  const double abort = AbortProbability(n, k, t, max_dropout_fraction);
  if (abort > max_abort_probability) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "secagg: degree k=%d is too small for dropout rate %.3g with threshold t=%d: a round "
        "aborts with probability %.3g > %.3g (some neighbourhood of k+1=%d keeps fewer than t "
        "sites); raise k or lower t",
        k, max_dropout_fraction, t, abort, max_abort_probability, k + 1));
  }
  return absl::OkStatus();
}

absl::StatusOr<SecAggConfig> SecAggConfig::Resolved() const {
  SecAggConfig resolved = *this;
  const uint32_t n = static_cast<uint32_t>(sites.size());
  if (resolved.degree == 0 && n >= 1) resolved.degree = n - 1;
  if (resolved.threshold == 0) {
    resolved.threshold = (EffectiveDegree(resolved.degree, n) + 1) / 2 + 1;
  }
  if (absl::Status status = resolved.Validate(); !status.ok()) return status;
  return resolved;
}

}  // namespace fedattn::secagg
