#include "fedattn/audit/ledger_entry.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "fedattn/audit/canonical_json.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/crypto/digest.h"
#include "fedattn/crypto/signature.h"

namespace fedattn::audit {
namespace {

using nlohmann::json;

json EpsilonJson(double value) { return std::isinf(value) ? json(nullptr) : json(value); }

// Typed field readers whose errors name the field (the path is prefixed by the caller).
absl::StatusOr<const json*> Field(const json& object, const char* name) {
  if (!object.is_object()) return absl::InvalidArgumentError(absl::StrCat("expected an object holding '", name, "'"));
  const auto it = object.find(name);
  if (it == object.end()) return absl::InvalidArgumentError(absl::StrCat("missing field '", name, "'"));
  return &*it;
}
absl::StatusOr<std::string> String(const json& object, const char* name) {
  ASSIGN_OR_RETURN(const json* value, Field(object, name));
  if (!value->is_string()) return absl::InvalidArgumentError(absl::StrCat("field '", name, "' must be a string"));
  return value->get<std::string>();
}
absl::StatusOr<double> Number(const json& object, const char* name) {
  ASSIGN_OR_RETURN(const json* value, Field(object, name));
  if (!value->is_number()) return absl::InvalidArgumentError(absl::StrCat("field '", name, "' must be a number"));
  return value->get<double>();
}
// A number, or null for +infinity.
absl::StatusOr<double> Epsilon(const json& object, const char* name) {
  ASSIGN_OR_RETURN(const json* value, Field(object, name));
  if (value->is_null()) return kUnbounded;
  if (!value->is_number()) {
    return absl::InvalidArgumentError(absl::StrCat("field '", name, "' must be a number or null (unbounded)"));
  }
  return value->get<double>();
}
absl::StatusOr<int64_t> Integer(const json& object, const char* name) {
  ASSIGN_OR_RETURN(const json* value, Field(object, name));
  if (!value->is_number_integer()) {
    return absl::InvalidArgumentError(absl::StrCat("field '", name, "' must be an integer"));
  }
  return value->get<int64_t>();
}

std::vector<uint8_t> SignedMessage(absl::string_view domain, absl::string_view canonical) {
  std::vector<uint8_t> message(domain.begin(), domain.end());
  message.push_back(0);
  message.insert(message.end(), canonical.begin(), canonical.end());
  return message;
}

}  // namespace

absl::Status ValidateMechanism(const LedgerMechanism& m) {
  if (m.client_clip_norm < 0 || m.client_noise_multiplier < 0 || m.client_contributors < 0) {
    return absl::InvalidArgumentError("ledger: client-level S, z and n must be >= 0");
  }
  if (m.name == "none") return absl::OkStatus();
  if (m.name != "poisson_gaussian") {
    return absl::InvalidArgumentError(
        absl::StrCat("ledger: mechanism must be poisson_gaussian or none, got '", m.name, "'"));
  }
  if (!(m.sampling_rate > 0 && m.sampling_rate <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("ledger: sampling rate q must be in (0, 1], got ", m.sampling_rate));
  }
  if (!(m.noise_multiplier > 0 && std::isfinite(m.noise_multiplier))) {
    return absl::InvalidArgumentError(absl::StrCat("ledger: noise multiplier must be > 0, got ", m.noise_multiplier));
  }
  if (m.steps < 1) return absl::InvalidArgumentError(absl::StrCat("ledger: steps must be >= 1, got ", m.steps));
  if (!(m.max_grad_norm > 0 && std::isfinite(m.max_grad_norm))) {
    return absl::InvalidArgumentError(absl::StrCat("ledger: max_grad_norm C must be > 0, got ", m.max_grad_norm));
  }
  return absl::OkStatus();
}

json LedgerEntryToJson(const LedgerEntry& e) {
  const LedgerMechanism& m = e.mechanism;
  json mechanism = {{"name", m.name}};
  if (!m.unbounded()) {
    mechanism["sampling"] = "poisson";
    mechanism["sampling_rate"] = m.sampling_rate;
    mechanism["noise_multiplier"] = m.noise_multiplier;
    mechanism["steps"] = m.steps;
    mechanism["max_grad_norm"] = m.max_grad_norm;
  }
  if (m.client_clip_norm > 0) {
    mechanism["client"] = {{"clip_norm", m.client_clip_norm},
                           {"noise_multiplier", m.client_noise_multiplier},
                           {"contributors", m.client_contributors}};
  }
  return json{
      {"format", kLedgerFormat},
      {"seq", e.id},
      {"site", {{"name", e.site_name}, {"certificate_sha256", e.site_certificate_sha256}}},
      {"job", e.job_id},
      {"round", e.round},
      {"dataset_id", e.dataset_id},
      {"privacy_unit", e.privacy_unit},
      {"mechanism", std::move(mechanism)},
      {"delta", e.delta},
      {"accountant", {{"name", e.accountant}, {"version", e.accountant_version}, {"orders", e.order_grid}}},
      {"epsilon", {{"release", EpsilonJson(e.epsilon_release)}, {"cumulative", EpsilonJson(e.epsilon_cumulative)}}},
      {"cap", {{"epsilon", EpsilonJson(e.epsilon_cap)}, {"delta", e.cap_delta}}},
      {"decision", e.decision == LedgerDecision::kReleased ? "released" : "refused"},
      {"reason", e.reason},
      {"update_sha256", e.update_sha256},
      {"model_sha256", e.model_sha256},
      {"time_unix_ms", e.created_unix_ms},
  };
}

absl::StatusOr<std::string> CanonicalLedgerEntry(const LedgerEntry& entry) {
  return CanonicalJson(LedgerEntryToJson(entry));
}

absl::StatusOr<LedgerEntry> LedgerEntryFromJson(const json& j) {
  LedgerEntry e;
  ASSIGN_OR_RETURN(std::string format, String(j, "format"));
  if (format != kLedgerFormat) {
    return absl::InvalidArgumentError(absl::StrCat("format is '", format, "', expected '", kLedgerFormat, "'"));
  }
  ASSIGN_OR_RETURN(e.id, Integer(j, "seq"));
  ASSIGN_OR_RETURN(const json* site, Field(j, "site"));
  ASSIGN_OR_RETURN(e.site_name, String(*site, "name"));
  ASSIGN_OR_RETURN(e.site_certificate_sha256, String(*site, "certificate_sha256"));
  ASSIGN_OR_RETURN(e.job_id, String(j, "job"));
  ASSIGN_OR_RETURN(e.round, Integer(j, "round"));
  ASSIGN_OR_RETURN(e.dataset_id, String(j, "dataset_id"));
  ASSIGN_OR_RETURN(e.privacy_unit, String(j, "privacy_unit"));
  ASSIGN_OR_RETURN(const json* m, Field(j, "mechanism"));
  ASSIGN_OR_RETURN(e.mechanism.name, String(*m, "name"));
  if (!e.mechanism.unbounded()) {
    ASSIGN_OR_RETURN(std::string sampling, String(*m, "sampling"));
    if (sampling != "poisson") {
      return absl::InvalidArgumentError(absl::StrCat("mechanism.sampling is '", sampling, "', expected 'poisson'"));
    }
    ASSIGN_OR_RETURN(e.mechanism.sampling_rate, Number(*m, "sampling_rate"));
    ASSIGN_OR_RETURN(e.mechanism.noise_multiplier, Number(*m, "noise_multiplier"));
    ASSIGN_OR_RETURN(e.mechanism.steps, Integer(*m, "steps"));
    ASSIGN_OR_RETURN(e.mechanism.max_grad_norm, Number(*m, "max_grad_norm"));
  }
  if (m->contains("client")) {
    const json& client = (*m)["client"];
    ASSIGN_OR_RETURN(e.mechanism.client_clip_norm, Number(client, "clip_norm"));
    ASSIGN_OR_RETURN(e.mechanism.client_noise_multiplier, Number(client, "noise_multiplier"));
    ASSIGN_OR_RETURN(e.mechanism.client_contributors, Integer(client, "contributors"));
  }
  RETURN_IF_ERROR(ValidateMechanism(e.mechanism));
  ASSIGN_OR_RETURN(e.delta, Number(j, "delta"));
  ASSIGN_OR_RETURN(const json* accountant, Field(j, "accountant"));
  ASSIGN_OR_RETURN(e.accountant, String(*accountant, "name"));
  ASSIGN_OR_RETURN(e.accountant_version, String(*accountant, "version"));
  ASSIGN_OR_RETURN(e.order_grid, String(*accountant, "orders"));
  ASSIGN_OR_RETURN(const json* epsilon, Field(j, "epsilon"));
  ASSIGN_OR_RETURN(e.epsilon_release, Epsilon(*epsilon, "release"));
  ASSIGN_OR_RETURN(e.epsilon_cumulative, Epsilon(*epsilon, "cumulative"));
  ASSIGN_OR_RETURN(const json* cap, Field(j, "cap"));
  ASSIGN_OR_RETURN(e.epsilon_cap, Epsilon(*cap, "epsilon"));
  ASSIGN_OR_RETURN(e.cap_delta, Number(*cap, "delta"));
  ASSIGN_OR_RETURN(std::string decision, String(j, "decision"));
  if (decision != "released" && decision != "refused") {
    return absl::InvalidArgumentError(absl::StrCat("decision is '", decision, "', expected released or refused"));
  }
  e.decision = decision == "released" ? LedgerDecision::kReleased : LedgerDecision::kRefused;
  ASSIGN_OR_RETURN(e.reason, String(j, "reason"));
  ASSIGN_OR_RETURN(e.update_sha256, String(j, "update_sha256"));
  ASSIGN_OR_RETURN(e.model_sha256, String(j, "model_sha256"));
  ASSIGN_OR_RETURN(e.created_unix_ms, Integer(j, "time_unix_ms"));
  return e;
}

absl::StatusOr<std::string> SignCanonical(EVP_PKEY* private_key, absl::string_view domain,
                                          absl::string_view canonical) {
  const std::vector<uint8_t> message = SignedMessage(domain, canonical);
  ASSIGN_OR_RETURN(crypto::Ed25519Signature signature, crypto::SignEd25519(private_key, message));
  return crypto::ToHex(signature);
}

absl::Status VerifyCanonical(EVP_PKEY* public_key, absl::string_view domain, absl::string_view canonical,
                             absl::string_view signature_hex) {
  const bool hex = std::all_of(signature_hex.begin(), signature_hex.end(),
                               [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
  if (signature_hex.size() != 128 || !hex) {
    return absl::UnauthenticatedError("the signature is not 128 lowercase hex digits");
  }
  const std::string signature = absl::HexStringToBytes(signature_hex);
  const std::vector<uint8_t> message = SignedMessage(domain, canonical);
  return crypto::VerifyEd25519(public_key, message,
                               std::span(reinterpret_cast<const uint8_t*>(signature.data()), signature.size()));
}

std::string Sha256Hex(absl::string_view bytes) { return crypto::ToHex(crypto::Sha256(bytes)); }

}  // namespace fedattn::audit
