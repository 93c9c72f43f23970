#include "fedattn/rpc/connection_probe.h"

#include <netdb.h>
#include <signal.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fedattn/common/files.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/crypto/crl.h"
#include "fedattn/crypto/openssl_error.h"

namespace fedattn::rpc {
namespace {

struct SslCtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct SslDeleter {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};

class Socket {
 public:
  Socket() = default;
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }
  void Reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

void SetTimeouts(int fd, absl::Duration timeout) {
  const timeval tv = absl::ToTimeval(timeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

absl::Status Connect(const std::string& address, absl::Duration timeout, Socket* socket) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("coordinator address '", address, "' needs host:port"));
  }
  std::string host = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* results = nullptr;
  if (const int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &results); rc != 0) {
    return absl::UnavailableError(absl::StrCat("cannot resolve '", host, "': ", gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owned(results, &freeaddrinfo);
  std::string last_error = "no address";
  for (addrinfo* ai = results; ai != nullptr; ai = ai->ai_next) {
    socket->Reset(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (socket->fd() < 0) continue;
    SetTimeouts(socket->fd(), timeout);
    if (::connect(socket->fd(), ai->ai_addr, ai->ai_addrlen) == 0) return absl::OkStatus();
    last_error = std::strerror(errno);
  }
  return absl::UnavailableError(absl::StrCat("cannot connect to ", address, ": ", last_error,
                                             " (is the coordinator running and reachable?)"));
}

absl::StatusOr<std::unique_ptr<SSL_CTX, SslCtxDeleter>> MakeContext(const TlsIdentity& identity) {
  std::unique_ptr<SSL_CTX, SslCtxDeleter> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return crypto::OpenSslError("cannot create a TLS context");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  ASSIGN_OR_RETURN(crypto::X509Ptr ca, crypto::CertificateFromPem(identity.ca_pem));
  ASSIGN_OR_RETURN(crypto::X509Ptr cert, crypto::CertificateFromPem(identity.cert_pem));
  ASSIGN_OR_RETURN(crypto::PKeyPtr key, crypto::PrivateKeyFromPem(identity.key_pem.value()));
  if (X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), ca.get()) != 1 ||
      SSL_CTX_use_certificate(ctx.get(), cert.get()) != 1 || SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1) {
    return crypto::OpenSslError("cannot load our TLS identity");
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  static const unsigned char kAlpn[] = {2, 'h', '2'};  // gRPC servers insist on HTTP/2 by ALPN
  SSL_CTX_set_alpn_protos(ctx.get(), kAlpn, sizeof(kAlpn));
  return ctx;
}

// Blocks SIGPIPE in this thread for its lifetime and discards one raised meanwhile.
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock() {
    sigemptyset(&sigpipe_);
    sigaddset(&sigpipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &sigpipe_, &previous_);
  }
  ~ScopedSigpipeBlock() {
    const timespec zero{0, 0};
    while (sigtimedwait(&sigpipe_, nullptr, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;

 private:
  sigset_t sigpipe_;
  sigset_t previous_;
};

// Whether our own kit's revocation lists (identity.crl_dir) list our certificate: a server that
// refuses a revoked certificate may close without an alert that says so.
bool RevokedInOurKit(const TlsIdentity& identity) {
  if (identity.crl_dir.empty()) return false;
  auto ca = crypto::CertificateFromPem(identity.ca_pem);
  auto cert = crypto::CertificateFromPem(identity.cert_pem);
  if (!ca.ok() || !cert.ok()) return false;
  const std::string serial = crypto::CertificateSerialHex(cert->get());
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(identity.crl_dir, error)) {
    auto pem = ReadFile(entry.path());
    if (!pem.ok()) continue;
    auto crl = crypto::ReadCrlPem(*pem, ca->get());
    if (!crl.ok()) continue;
    for (const crypto::RevokedCertificate& revoked : crl->revoked) {
      if (revoked.serial_hex == serial) return true;
    }
  }
  return false;
}

// What a TLS alert from the server means for the person reading the log.
std::string AlertHint(const std::string& reasons) {
  if (reasons.find("unknown ca") != std::string::npos) return " (our certificate is not from its consortium CA)";
  if (reasons.find("expired") != std::string::npos) return " (our certificate has expired)";
  if (reasons.find("revoked") != std::string::npos) return " (our certificate has been revoked)";
  if (reasons.find("certificate required") != std::string::npos) return " (it wants a client certificate)";
  if (reasons.find("unexpected eof") != std::string::npos) {
    // gRPC's server checks some chains after the handshake and then closes without an alert.
    return " (it closed the connection without a reason: most likely our certificate is not from its "
           "consortium CA)";
  }
  return "";
}

}  // namespace

absl::Status ProbeConnection(const TlsIdentity& identity, const std::string& address,
                             const std::string& server_name, absl::Duration timeout) {
  // The server may close the connection at any point: no write may kill us with SIGPIPE.
  const ScopedSigpipeBlock no_sigpipe;
  Socket socket;
  RETURN_IF_ERROR(Connect(address, timeout, &socket));
  ASSIGN_OR_RETURN(auto ctx, MakeContext(identity));
  std::unique_ptr<SSL, SslDeleter> ssl(SSL_new(ctx.get()));
  if (!ssl) return crypto::OpenSslError("cannot create a TLS session");
  SSL_set_fd(ssl.get(), socket.fd());
  SSL_set1_host(ssl.get(), server_name.c_str());
  ERR_clear_error();
  if (SSL_connect(ssl.get()) != 1) {
    const long verify = SSL_get_verify_result(ssl.get());
    if (verify != X509_V_OK) {
      crypto::DrainOpenSslErrors();
      std::string reason = X509_verify_cert_error_string(verify);
      if (verify == X509_V_ERR_HOSTNAME_MISMATCH) {
        reason = absl::StrCat("its certificate does not name '", server_name, "'");
      } else if (verify == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN || verify == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
                 verify == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
                 verify == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT || verify == X509_V_ERR_CERT_SIGNATURE_FAILURE) {
        reason = absl::StrCat("it was not issued by our consortium CA (", reason, ")");
      }
      return absl::UnauthenticatedError(
          absl::StrCat("TLS handshake with ", address, " failed: we refused the server's certificate: ", reason));
    }
    std::string reasons = crypto::DrainOpenSslErrors();
    if (reasons.empty()) reasons = "the connection was closed during the handshake";
    return absl::UnauthenticatedError(absl::StrCat("TLS handshake with ", address, " failed: ", reasons));
  }
  // With TLS 1.3 the server judges our certificate after the client finishes its handshake, so a
  // refusal arrives as an alert on the first read. Read before writing anything: data we sent to a
  // server that has closed would make it reset the connection and the alert would be lost. An
  // accepting gRPC server sends its HTTP/2 settings at once, so a good connection answers quickly.
  char byte = 0;
  if (SSL_read(ssl.get(), &byte, 1) <= 0) {
    const std::string reasons = crypto::DrainOpenSslErrors();
    if (!reasons.empty()) {
      std::string hint = AlertHint(reasons);
      // TLS has no alert for "not yet valid" (it says "bad certificate"): tell it from our side.
      if (absl::Now() < identity.info.not_before) {
        hint = absl::StrCat(" (our certificate is not valid before ",
                            absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", identity.info.not_before, absl::UTCTimeZone()),
                            ": wait until then, or check this machine's clock)");
      } else if (RevokedInOurKit(identity)) {
        hint = " (our certificate has been revoked: it is on the CA's revocation list in our kit)";
      }
      return absl::UnauthenticatedError(
          absl::StrCat("the server at ", address, " refused our certificate: ", reasons, hint));
    }
  }
  crypto::DrainOpenSslErrors();
  return absl::OkStatus();
}

}  // namespace fedattn::rpc
