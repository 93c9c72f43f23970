#include "fedattn/rpc/tls.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <grpcpp/support/channel_arguments.h>
#include <openssl/x509.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fedattn/common/files.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/crypto/openssl_error.h"

namespace fedattn::rpc {
namespace {

absl::Status InFile(const std::filesystem::path& path, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(path.string(), ": ", status.message()));
}

std::shared_ptr<grpc::experimental::StaticDataCertificateProvider> Provider(const TlsIdentity& identity) {
  std::vector<grpc::experimental::IdentityKeyCertPair> pairs = {
      {identity.key_pem.value(), identity.cert_pem}};
  return std::make_shared<grpc::experimental::StaticDataCertificateProvider>(identity.ca_pem, pairs);
}

}  // namespace

absl::StatusOr<TlsIdentity> LoadTlsIdentity(const TlsFiles& files) {
  TlsIdentity identity;
  ASSIGN_OR_RETURN(identity.ca_pem, ReadFile(files.ca_cert));
  ASSIGN_OR_RETURN(identity.cert_pem, ReadFile(files.cert));
  ASSIGN_OR_RETURN(std::string key_pem, ReadFile(files.key));
  identity.key_pem = crypto::SecretString(std::move(key_pem));

  auto ca = crypto::CertificateFromPem(identity.ca_pem);
  if (!ca.ok()) return InFile(files.ca_cert, ca.status());
  auto cert = crypto::CertificateFromPem(identity.cert_pem);
  if (!cert.ok()) return InFile(files.cert, cert.status());
  auto key = crypto::PrivateKeyFromPem(identity.key_pem.value());
  if (!key.ok()) return InFile(files.key, key.status());
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    crypto::DrainOpenSslErrors();
    return absl::InvalidArgumentError(absl::StrCat(files.key.string(), " does not match the certificate ",
                                                   files.cert.string()));
  }
  auto info = crypto::InspectCertificate(cert->get());
  if (!info.ok()) return InFile(files.cert, info.status());
  identity.info = *std::move(info);
  // An expired certificate is reported by the peer's refusal (and by the agent's diagnosis), so
  // only the chain is checked here, at a moment inside both the certificate's and the CA's window.
  auto ca_info = crypto::InspectCertificate(ca->get());
  if (!ca_info.ok()) return InFile(files.ca_cert, ca_info.status());
  const absl::Time when = std::max(identity.info.not_before, ca_info->not_before) + absl::Seconds(1);
  const absl::Status chain = crypto::VerifyCertificate(cert->get(), ca->get(), when);
  if (!chain.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(files.cert.string(), " cannot be verified against the CA in ",
                                                   files.ca_cert.string(), ": ", chain.message()));
  }
  if (!files.crl_dir.empty() && !std::filesystem::is_directory(files.crl_dir)) {
    return absl::NotFoundError(absl::StrCat("CRL directory ", files.crl_dir.string(), " does not exist"));
  }
  identity.crl_dir = files.crl_dir;
  return identity;
}

std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(const TlsIdentity& identity) {
  grpc::experimental::TlsServerCredentialsOptions options(Provider(identity));
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  if (!identity.crl_dir.empty()) options.set_crl_directory(identity.crl_dir.string());
  return grpc::experimental::TlsServerCredentials(options);
}

std::shared_ptr<grpc::Channel> MakeChannel(const TlsIdentity& identity, const std::string& address,
                                           const std::string& server_name) {
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(Provider(identity));
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  if (!identity.crl_dir.empty()) options.set_crl_directory(identity.crl_dir.string());
  grpc::ChannelArguments args;
  // The coordinator is reached by address but must prove it is the party named in our kit.
  args.SetSslTargetNameOverride(server_name);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 500);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);  // the agent adds its own backoff on top
  args.SetMaxReceiveMessageSize(16 * 1024 * 1024);
  return grpc::CreateCustomChannel(address, grpc::experimental::TlsCredentials(options), args);
}

}  // namespace fedattn::rpc
