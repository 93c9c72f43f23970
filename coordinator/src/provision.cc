#include "fedattn/coordinator/provision.h"

#include <arpa/inet.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "fedattn/common/files.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/common/logging.h"
#include "fedattn/crypto/crl.h"
#include "yaml-cpp/yaml.h"

namespace fedattn::coordinator {
namespace {

using crypto::PartyRole;

bool IsIpAddress(const std::string& host) {
  unsigned char buffer[16];
  return inet_pton(AF_INET, host.c_str(), buffer) == 1 || inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

std::string HostOf(const std::string& address) {
  const size_t colon = address.rfind(':');
  std::string host = colon == std::string::npos ? address : address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return host;
}

struct IssuedIdentity {
  std::string cert_pem;
  crypto::SecretString key_pem;
};

absl::StatusOr<IssuedIdentity> Issue(const crypto::CertificateRequest& request, X509* ca_cert, EVP_PKEY* ca_key) {
  ASSIGN_OR_RETURN(crypto::PKeyPtr key, crypto::GenerateEd25519Key());
  ASSIGN_OR_RETURN(crypto::X509Ptr cert, crypto::IssueCertificate(request, key.get(), ca_cert, ca_key));
  IssuedIdentity issued;
  ASSIGN_OR_RETURN(issued.cert_pem, crypto::CertificateToPem(cert.get()));
  ASSIGN_OR_RETURN(issued.key_pem, crypto::PrivateKeyToPem(key.get()));
  return issued;
}

absl::Status WriteIdentity(const std::filesystem::path& dir, const std::string& name, const IssuedIdentity& id) {
  RETURN_IF_ERROR(WriteFileAtomic(dir / (name + ".crt"), id.cert_pem, 0644));
  return WriteFileAtomic(dir / (name + ".key"), id.key_pem.value(), 0600);
}

void EmitTls(YAML::Emitter& out, const std::string& name) {
  out << YAML::Key << "tls" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "ca" << YAML::Value << "ca.crt";
  out << YAML::Key << "cert" << YAML::Value << name + ".crt";
  out << YAML::Key << "key" << YAML::Value << name + ".key";
  out << YAML::Key << "crl_dir" << YAML::Value << "crl";
  out << YAML::EndMap;
}

void EmitCoordinatorRef(YAML::Emitter& out, const FederationConfig& config) {
  out << YAML::Key << "coordinator" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "address" << YAML::Value << config.coordinator.address;
  out << YAML::Key << "name" << YAML::Value << config.coordinator.name;
  out << YAML::EndMap;
}

std::string KitYaml(const FederationConfig& config, PartyRole role, const std::string& name) {
  YAML::Emitter out;
  out << YAML::Comment(absl::StrCat("FedAttn ", crypto::RoleName(role), " '", name, "' of federation '",
                                    config.name, "' (written by fedattn provision)"));
  out << YAML::BeginMap;
  if (role == PartyRole::kCoordinator) {
    out << YAML::Key << "coordinator" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value << name;
    out << YAML::Key << "listen" << YAML::Value << config.coordinator.listen;
    out << YAML::Key << "state_dir" << YAML::Value << "state";
    out << YAML::EndMap;
  } else if (role == PartyRole::kSite) {
    out << YAML::Key << "site" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value << name;
    out << YAML::Key << "state_dir" << YAML::Value << "state";
    out << YAML::EndMap;
    EmitCoordinatorRef(out, config);
  } else {
    out << YAML::Key << "admin" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value << name;
    out << YAML::EndMap;
    EmitCoordinatorRef(out, config);
  }
  EmitTls(out, name);
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::string StartScript(PartyRole role) {
  if (role == PartyRole::kCoordinator) {
    return "#!/bin/sh\n# Starts this coordinator; extra arguments are passed on (e.g. --log-level debug).\n"
           "cd \"$(dirname \"$0\")\" && exec fedattn-coordinator --config coordinator.yaml \"$@\"\n";
  }
  if (role == PartyRole::kSite) {
    return "#!/bin/sh\n# Starts this site's agent; extra arguments are passed on (e.g. --log-level debug).\n"
           "cd \"$(dirname \"$0\")\" && exec fedattn-agent --config site.yaml \"$@\"\n";
  }
  return "#!/bin/sh\n# Runs the operator CLI as this admin: ./start.sh status\n"
         "cd \"$(dirname \"$0\")\" && cmd=\"$1\" && shift && exec fedattn \"$cmd\" --config admin.yaml \"$@\"\n";
}

absl::Status WriteKit(const FederationConfig& config, const std::filesystem::path& out, PartyRole role,
                      const std::string& name, const std::string& ca_pem, X509* ca_cert, EVP_PKEY* ca_key,
                      absl::Time now) {
  crypto::CertificateRequest request;
  request.name = name;
  request.role = role;
  request.federation = config.name;
  request.not_before = now - absl::Minutes(5);  // tolerate small clock skew between machines
  request.not_after = now + absl::Hours(24 * config.validity_days);
  if (role == PartyRole::kCoordinator) {
    std::vector<std::string> hosts = config.coordinator.hosts;
    hosts.push_back(HostOf(config.coordinator.address));
    hosts.push_back("localhost");
    for (const std::string& host : hosts) {
      auto& list = IsIpAddress(host) ? request.ip_addresses : request.dns_names;
      if (std::find(list.begin(), list.end(), host) == list.end()) list.push_back(host);
    }
  }
  ASSIGN_OR_RETURN(IssuedIdentity identity, Issue(request, ca_cert, ca_key));
  const std::filesystem::path kit = out / "kits" / name;
  RETURN_IF_ERROR(EnsureDirectory(kit, 0700));
  RETURN_IF_ERROR(WriteFileAtomic(kit / "ca.crt", ca_pem, 0644));
  RETURN_IF_ERROR(WriteIdentity(kit, name, identity));
  const std::string yaml_name = absl::StrCat(crypto::RoleName(role), ".yaml");
  RETURN_IF_ERROR(WriteFileAtomic(kit / yaml_name, KitYaml(config, role, name), 0644));
  return WriteFileAtomic(kit / "start.sh", StartScript(role), 0755);
}

absl::StatusOr<std::pair<crypto::X509Ptr, crypto::PKeyPtr>> LoadCa(const std::filesystem::path& out) {
  ASSIGN_OR_RETURN(std::string cert_pem, ReadFile(out / "ca" / "ca.crt"));
  ASSIGN_OR_RETURN(std::string key_text, ReadFile(out / "ca" / "ca.key"));
  crypto::SecretString key_pem(std::move(key_text));
  ASSIGN_OR_RETURN(crypto::X509Ptr cert, crypto::CertificateFromPem(cert_pem));
  ASSIGN_OR_RETURN(crypto::PKeyPtr key, crypto::PrivateKeyFromPem(key_pem.value()));
  return std::make_pair(std::move(cert), std::move(key));
}

// Writes `pem` as OUT/ca/ca.crl and as the next free <hash>.r<N> in every kit's crl/ folder.
absl::Status PublishCrl(const std::filesystem::path& out, X509* ca_cert, const std::string& pem) {
  RETURN_IF_ERROR(WriteFileAtomic(out / "ca" / "ca.crl", pem, 0644));
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(out / "kits", error)) {
    if (!entry.is_directory()) continue;
    const std::filesystem::path dir = entry.path() / "crl";
    RETURN_IF_ERROR(EnsureDirectory(dir, 0755));
    int index = 0;
    while (std::filesystem::exists(dir / crypto::CrlFileName(ca_cert, index))) ++index;
    RETURN_IF_ERROR(WriteFileAtomic(dir / crypto::CrlFileName(ca_cert, index), pem, 0644));
  }
  if (error) return absl::InternalError(absl::StrCat("cannot list ", (out / "kits").string(), ": ", error.message()));
  return absl::OkStatus();
}

// A CRL is valid until the CA expires: an expired CRL would lock every party out.
absl::Time CrlNextUpdate(X509* ca_cert, absl::Time this_update) {
  auto info = crypto::InspectCertificate(ca_cert);
  return info.ok() && info->not_after > this_update ? info->not_after : this_update + absl::Hours(24 * 365);
}

}  // namespace

absl::Status Provision(const FederationConfig& config, const std::filesystem::path& out, absl::Time now) {
  RETURN_IF_ERROR(config.Validate());
  if (std::filesystem::exists(out / "ca" / "ca.key")) {
    return absl::FailedPreconditionError(absl::StrCat(
        (out / "ca" / "ca.key").string(),
        " exists: provisioning again would replace the consortium CA; choose another --out"));
  }
  RETURN_IF_ERROR(EnsureDirectory(out / "ca", 0700));

  crypto::CertificateRequest ca_request;
  ca_request.name = config.name + "-ca";
  ca_request.role = PartyRole::kCa;
  ca_request.federation = config.name;
  ca_request.not_before = now - absl::Minutes(5);
  ca_request.not_after = now + absl::Hours(24 * (config.validity_days + 365));
  ASSIGN_OR_RETURN(crypto::PKeyPtr ca_key, crypto::GenerateEd25519Key());
  ASSIGN_OR_RETURN(crypto::X509Ptr ca_cert, crypto::IssueCertificate(ca_request, ca_key.get(), nullptr, ca_key.get()));
  ASSIGN_OR_RETURN(std::string ca_pem, crypto::CertificateToPem(ca_cert.get()));
  ASSIGN_OR_RETURN(crypto::SecretString ca_key_pem, crypto::PrivateKeyToPem(ca_key.get()));
  RETURN_IF_ERROR(WriteFileAtomic(out / "ca" / "ca.key", ca_key_pem.value(), 0600));
  RETURN_IF_ERROR(WriteFileAtomic(out / "ca" / "ca.crt", ca_pem, 0644));

  RETURN_IF_ERROR(WriteKit(config, out, PartyRole::kCoordinator, config.coordinator.name, ca_pem, ca_cert.get(),
                           ca_key.get(), now));
  for (const std::string& site : config.sites) {
    RETURN_IF_ERROR(WriteKit(config, out, PartyRole::kSite, site, ca_pem, ca_cert.get(), ca_key.get(), now));
  }
  for (const std::string& admin : config.admins) {
    RETURN_IF_ERROR(WriteKit(config, out, PartyRole::kAdmin, admin, ca_pem, ca_cert.get(), ca_key.get(), now));
  }
  // An empty revocation list: with tls.crl_dir set, TLS refuses every peer when it has no CRL.
  const absl::Time crl_time = now - absl::Minutes(5);
  ASSIGN_OR_RETURN(std::string crl_pem,
                   crypto::IssueCrlPem({0, crl_time, CrlNextUpdate(ca_cert.get(), crl_time), {}}, ca_cert.get(),
                                       ca_key.get()));
  RETURN_IF_ERROR(PublishCrl(out, ca_cert.get(), crl_pem));
  spdlog::info("provisioned federation '{}': CA, coordinator '{}', {} sites, {} admins under {}", config.name,
               config.coordinator.name, config.sites.size(), config.admins.size(), out.string());
  return absl::OkStatus();
}

absl::Status IssuePartyCertificate(const std::filesystem::path& out, const crypto::CertificateRequest& request,
                                   const std::filesystem::path& dir) {
  ASSIGN_OR_RETURN(auto ca, LoadCa(out));
  ASSIGN_OR_RETURN(IssuedIdentity identity, Issue(request, ca.first.get(), ca.second.get()));
  RETURN_IF_ERROR(EnsureDirectory(dir, 0700));
  return WriteIdentity(dir, request.name, identity);
}

absl::Status RevokeParty(const std::filesystem::path& out, const std::string& party, absl::Time now) {
  RETURN_IF_ERROR(crypto::ValidatePartyName(party));
  const std::filesystem::path cert_path = out / "kits" / party / (party + ".crt");
  if (!std::filesystem::exists(cert_path)) {
    return absl::NotFoundError(absl::StrCat("no kit for party '", party, "' under ", (out / "kits").string(),
                                            " (", cert_path.string(), " does not exist)"));
  }
  ASSIGN_OR_RETURN(auto ca, LoadCa(out));
  ASSIGN_OR_RETURN(std::string cert_pem, ReadFile(cert_path));
  ASSIGN_OR_RETURN(crypto::X509Ptr cert, crypto::CertificateFromPem(cert_pem));
  const std::string serial = crypto::CertificateSerialHex(cert.get());
  crypto::CrlContents contents;
  contents.this_update = now;
  if (std::filesystem::exists(out / "ca" / "ca.crl")) {
    ASSIGN_OR_RETURN(std::string previous_pem, ReadFile(out / "ca" / "ca.crl"));
    absl::StatusOr<crypto::CrlContents> previous = crypto::ReadCrlPem(previous_pem, ca.first.get());
    if (!previous.ok()) {
      return absl::Status(previous.status().code(),
                          absl::StrCat((out / "ca" / "ca.crl").string(), ": ", previous.status().message()));
    }
    for (const crypto::RevokedCertificate& entry : previous->revoked) {
      if (entry.serial_hex == serial) {
        return absl::AlreadyExistsError(absl::StrCat("the certificate of '", party, "' (serial ", serial,
                                                     ") is already revoked"));
      }
    }
    contents.number = previous->number + 1;
    contents.revoked = previous->revoked;
    // OpenSSL keeps the CRL with the latest lastUpdate: it must move forward even within a second.
    contents.this_update = std::max(now, previous->this_update + absl::Seconds(1));
  }
  contents.revoked.push_back({serial, now});
  contents.next_update = CrlNextUpdate(ca.first.get(), contents.this_update);
  ASSIGN_OR_RETURN(std::string pem, crypto::IssueCrlPem(contents, ca.first.get(), ca.second.get()));
  RETURN_IF_ERROR(PublishCrl(out, ca.first.get(), pem));
  spdlog::info("revoked the certificate of '{}' (serial {}): CRL {} lists {} certificate(s)", party, serial,
               contents.number, contents.revoked.size());
  return absl::OkStatus();
}

}  // namespace fedattn::coordinator
