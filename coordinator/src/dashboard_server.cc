#include "fedattn/coordinator/dashboard_server.h"

#include <fcntl.h>
#include <httplib.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "fedattn/common/files.h"
#include "fedattn/common/logging.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/config.h"
#include "fedattn/crypto/digest.h"

namespace fedattn::coordinator {
namespace {

constexpr size_t kTokenBytes = 32;
constexpr size_t kMinTokenLength = 16;
constexpr int kServerThreads = 4;

bool StartsWithIgnoringCase(absl::string_view text, absl::string_view prefix) {
  return text.size() >= prefix.size() && absl::EqualsIgnoreCase(text.substr(0, prefix.size()), prefix);
}

// The credential in an Authorization header: a bearer token, or a basic-auth password.
std::string PresentedToken(absl::string_view authorization) {
  authorization = absl::StripAsciiWhitespace(authorization);
  if (StartsWithIgnoringCase(authorization, "Bearer ")) {
    return std::string(absl::StripAsciiWhitespace(authorization.substr(7)));
  }
  if (StartsWithIgnoringCase(authorization, "Basic ")) {
    std::string decoded;
    if (!absl::Base64Unescape(absl::StripAsciiWhitespace(authorization.substr(6)), &decoded)) return "";
    const size_t colon = decoded.find(':');
    return colon == std::string::npos ? "" : decoded.substr(colon + 1);
  }
  return "";
}

void SetHtml(httplib::Response& response, int status, std::string html) {
  response.status = status;
  response.set_content(std::move(html), "text/html; charset=utf-8");
}

}  // namespace

absl::StatusOr<std::string> LoadOrCreateDashboardToken(const std::filesystem::path& path) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0) {
    if (errno != ENOENT) {
      return absl::FailedPreconditionError(absl::StrCat("dashboard token file ", path.string(), ": ", std::strerror(errno)));
    }
    std::array<unsigned char, kTokenBytes> random;
    if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
      return absl::InternalError("cannot draw random bytes for the dashboard token");
    }
    const std::string token = crypto::ToHex(random);
    OPENSSL_cleanse(random.data(), random.size());
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create dashboard token file ", path.string(), ": ", std::strerror(errno)));
    }
    const std::string line = token + "\n";
    const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!written) {
      return absl::FailedPreconditionError(absl::StrCat("cannot write dashboard token file ", path.string()));
    }
    spdlog::info("dashboard: created the admin token file {} (mode 0600)", path.string());
    return token;
  }
  if ((info.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "dashboard token file %s is accessible by group or others (mode %04o): run chmod 600 %s", path.string(),
        info.st_mode & 07777, path.string()));
  }
  ASSIGN_OR_RETURN(std::string contents, ReadFile(path));
  std::string token(absl::StripAsciiWhitespace(contents));
  if (token.size() < kMinTokenLength) {
    return absl::FailedPreconditionError(absl::StrCat("dashboard token file ", path.string(), " holds fewer than ",
                                                      kMinTokenLength, " characters; delete it to have a new one made"));
  }
  return token;
}

bool DashboardAuthorized(const std::string& authorization, const std::string& token) {
  if (token.empty()) return false;
  const std::string presented = PresentedToken(authorization);
  // Digests have a fixed length, so neither the token's length nor its bytes leak through timing.
  const crypto::Sha256Digest expected = crypto::Sha256(token);
  const crypto::Sha256Digest actual = crypto::Sha256(presented);
  return !presented.empty() && CRYPTO_memcmp(expected.data(), actual.data(), expected.size()) == 0;
}

absl::StatusOr<std::unique_ptr<DashboardServer>> DashboardServer::Start(DashboardSources sources) {
  const DashboardOptions& options = sources.options->dashboard;
  RETURN_IF_ERROR(options.Validate());
  if (!options.enabled) return absl::InvalidArgumentError("the dashboard is not enabled");
  std::unique_ptr<DashboardServer> server(new DashboardServer());
  server->sources_ = std::move(sources);
  if (!options.token_file.empty()) {
    ASSIGN_OR_RETURN(server->token_, LoadOrCreateDashboardToken(options.token_file));
  }
  const bool https = !options.tls_cert.empty();
  if (https) {
    auto ssl = std::make_unique<httplib::SSLServer>(options.tls_cert.c_str(), options.tls_key.c_str());
    if (!ssl->is_valid()) {
      return absl::FailedPreconditionError(absl::StrCat("dashboard: cannot load the TLS certificate ",
                                                        options.tls_cert.string(), " and key ",
                                                        options.tls_key.string(), " (PEM files that match?)"));
    }
    SSL_CTX_set_min_proto_version(ssl->ssl_context(), TLS1_2_VERSION);
    server->http_ = std::move(ssl);
  } else {
    server->http_ = std::make_unique<httplib::Server>();
  }
  server->http_->new_task_queue = [] { return new httplib::ThreadPool(kServerThreads); };
  // SO_REUSEADDR only: cpp-httplib's default adds SO_REUSEPORT, which would let a second process
  // bind the same port and take a share of the connections.
  server->http_->set_socket_options([](socket_t sock) {
    const int yes = 1;
    (void)::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  server->Route();

  const size_t colon = options.listen.rfind(':');
  std::string host = options.listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = 0;
  if (!absl::SimpleAtoi(options.listen.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("dashboard.listen '", options.listen, "': bad port"));
  }
  if (port == 0) {
    port = server->http_->bind_to_any_port(host);
  } else if (!server->http_->bind_to_port(host, port)) {
    port = -1;
  }
  if (port <= 0) {
    return absl::UnavailableError(absl::StrCat("dashboard: cannot listen on ", options.listen,
                                               " (address in use, or not an address of this machine?)"));
  }
  server->port_ = port;
  const std::string url_host = host.find(':') != std::string::npos ? absl::StrCat("[", host, "]") : host;
  server->url_ = absl::StrCat(https ? "https" : "http", "://", url_host, ":", port, "/");
  server->thread_ = std::thread([http = server->http_.get(), done = &server->listen_returned_] {
    http->listen_after_bind();
    done->store(true);
  });
  // stop() only ends a server that is already running: wait for it, so that a Stop() right after
  // Start() cannot be lost (and leave Stop() joining a thread that never ends).
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!server->http_->is_running() && !server->listen_returned_.load() && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  if (!server->http_->is_running()) {
    return absl::UnavailableError(absl::StrCat("dashboard: the server on ", options.listen, " did not start"));
  }
  spdlog::info("dashboard listening on {} ({})", server->url_,
               server->token_.empty() ? "no credential: loopback only" : "admin token required");
  return server;
}

void DashboardServer::Route() {
  httplib::Server& http = *http_;
  // No script, no outside resource; inline CSS and SVG only.
  http.set_default_headers({{"Content-Security-Policy",
                             "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                             "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"},
                            {"X-Content-Type-Options", "nosniff"},
                            {"X-Frame-Options", "DENY"},
                            {"Referrer-Policy", "no-referrer"},
                            {"Cache-Control", "no-store"}});
  http.set_pre_routing_handler([this](const httplib::Request& request, httplib::Response& response) {
    if (token_.empty() || request.path == "/healthz") return httplib::Server::HandlerResponse::Unhandled;
    if (DashboardAuthorized(request.get_header_value("Authorization"), token_)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    spdlog::warn("dashboard: refused {} {} from {}: missing or wrong admin token", request.method, request.path,
                 request.remote_addr);
    response.status = 401;
    response.set_header("WWW-Authenticate", "Basic realm=\"FedAttn dashboard\", charset=\"UTF-8\"");
    response.set_content("401 unauthorized: send the admin token (dashboard.token_file) as a bearer token or as the "
                         "basic-auth password\n",
                         "text/plain; charset=utf-8");
    return httplib::Server::HandlerResponse::Handled;
  });
  http.set_exception_handler([](const httplib::Request& request, httplib::Response& response, std::exception_ptr) {
    spdlog::error("dashboard: internal error serving {}", request.path);
    response.status = 500;
    response.set_content("500 internal error\n", "text/plain; charset=utf-8");
  });
  http.set_logger([](const httplib::Request& request, const httplib::Response& response) {
    spdlog::debug("dashboard: {} {} -> {}", request.method, request.path, response.status);
  });

  auto context = [this] {
    DashboardContext context;
    context.coordinator_name = sources_.options->name;
    context.version = FEDATTN_VERSION;
    context.now = sources_.clock->Now();
    context.online_window = absl::Milliseconds(sources_.options->online_window_ms);
    context.refresh_seconds = static_cast<int>(sources_.options->dashboard.refresh_seconds);
    return context;
  };
  http.set_error_handler([context](const httplib::Request& request, httplib::Response& response) {
    if (response.status == 404 && response.body.empty()) {
      SetHtml(response, 404, RenderErrorPage(context(), 404, absl::StrCat("no page at ", request.path)));
    }
  });

  http.Get("/", [this, context](const httplib::Request&, httplib::Response& response) {
    auto jobs = sources_.store->ListJobs();
    auto sites = sources_.registry->List();
    if (!jobs.ok() || !sites.ok()) {
      const absl::Status status = !jobs.ok() ? jobs.status() : sites.status();
      SetHtml(response, 500, RenderErrorPage(context(), 500, status.message()));
      return;
    }
    SetHtml(response, 200, RenderJobsPage(context(), *jobs, *sites));
  });
  http.Get(R"(/jobs/([^/]+))", [this, context](const httplib::Request& request, httplib::Response& response) {
    const std::string id = request.matches[1];
    auto job = sources_.store->GetJob(id);
    if (!job.ok()) {
      const int status = job.status().code() == absl::StatusCode::kNotFound ? 404 : 500;
      SetHtml(response, status, RenderErrorPage(context(), status, job.status().message()));
      return;
    }
    auto rounds = sources_.store->Rounds(id);
    auto sites = sources_.registry->List();
    if (!rounds.ok() || !sites.ok()) {
      const absl::Status status = !rounds.ok() ? rounds.status() : sites.status();
      SetHtml(response, 500, RenderErrorPage(context(), 500, status.message()));
      return;
    }
    const EpsilonCaps caps = sources_.caps ? sources_.caps(id) : EpsilonCaps{};
    SetHtml(response, 200, RenderJobPage(context(), *job, *rounds, *sites, caps));
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
    MetricsSnapshot snapshot;
    snapshot.version = FEDATTN_VERSION;
    snapshot.now = sources_.clock->Now();
    snapshot.online_window = absl::Milliseconds(sources_.options->online_window_ms);
    absl::Status status = absl::OkStatus();
    auto jobs = sources_.store->ListJobs();
    if (jobs.ok()) {
      for (JobRecord& job : *jobs) {
        auto rounds = sources_.store->Rounds(job.id);
        if (!rounds.ok()) {
          status = rounds.status();
          break;
        }
        snapshot.jobs.push_back({std::move(job), *std::move(rounds)});
      }
    } else {
      status = jobs.status();
    }
    auto sites = sources_.registry->List();
    if (status.ok() && !sites.ok()) status = sites.status();
    if (!status.ok()) {
      response.status = 500;
      response.set_content(absl::StrCat("500 cannot read the coordinator's state: ", status.message(), "\n"),
                           "text/plain; charset=utf-8");
      return;
    }
    snapshot.sites = *std::move(sites);
    if (sources_.counters != nullptr) {
      snapshot.bytes_sent = sources_.counters->bytes_sent.load(std::memory_order_relaxed);
      snapshot.bytes_received = sources_.counters->bytes_received.load(std::memory_order_relaxed);
    }
    response.set_content(RenderPrometheusMetrics(snapshot), "text/plain; version=0.0.4; charset=utf-8");
  });
  http.Get("/healthz", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("ok\n", "text/plain; charset=utf-8");
  });
}

DashboardServer::~DashboardServer() { Stop(); }

void DashboardServer::Stop() {
  if (http_) http_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace fedattn::coordinator
