// Mutual-TLS credentials for gRPC built from a party's startup kit (CA certificate, the party's
// certificate and private key, optionally a CRL directory), using gRPC's TLS credentials options.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "fedattn/crypto/certificate.h"

namespace fedattn::rpc {

struct TlsFiles {
  std::filesystem::path ca_cert;   // the consortium CA (PEM)
  std::filesystem::path cert;      // this party's certificate (PEM)
  std::filesystem::path key;       // this party's private key (PEM, mode 0600)
  std::filesystem::path crl_dir;   // optional: hashed CRL directory (openssl rehash layout)
};

// The loaded material, checked: files readable, PEM valid, key matches certificate, certificate
// issued by the CA. Errors name the file and OpenSSL's reason.
struct TlsIdentity {
  std::string ca_pem;
  std::string cert_pem;
  crypto::SecretString key_pem;
  crypto::CertificateInfo info;  // this party, read off its certificate
  std::filesystem::path crl_dir;
};
[[nodiscard]] absl::StatusOr<TlsIdentity> LoadTlsIdentity(const TlsFiles& files);

// Server side: requires and verifies a client certificate from the consortium CA.
[[nodiscard]] std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const TlsIdentity& identity);

// Client side: presents our certificate, verifies the server's chain and that its certificate
// names `server_name` (the coordinator's party name from the startup kit).
[[nodiscard]] std::shared_ptr<grpc::Channel> MakeChannel(const TlsIdentity& identity,
                                                         const std::string& address,
                                                         const std::string& server_name);

}  // namespace fedattn::rpc
