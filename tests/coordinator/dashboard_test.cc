// The dashboard's pieces: SVG charts, HTML pages, Prometheus metrics, options, the admin token,
// and the HTTP server in-process on 127.0.0.1 (the real-process test is tests/integration/dashboard_http_test.cc).
#include <httplib.h>
#include <sys/stat.h>

#include <cmath>
#include <fstream>
#include <limits>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "fedattn/common/clock.h"
#include "fedattn/coordinator/coordinator_options.h"
#include "fedattn/coordinator/dashboard_pages.h"
#include "fedattn/coordinator/dashboard_server.h"
#include "fedattn/coordinator/prometheus_metrics.h"
#include "fedattn/coordinator/svg_chart.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/temp_dir.h"

namespace fedattn::coordinator {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
const std::string kEvil = "<script>alert('x')</script>&\"";

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

TEST(SvgChartTest, EscapesHtml) {
  EXPECT_EQ(HtmlEscape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
  EXPECT_EQ(HtmlEscape(""), "");
}

TEST(SvgChartTest, NiceTicksAreRoundNumbersCoveringTheRange) {
  using ::testing::DoubleNear;
  EXPECT_THAT(NiceTicks(0, 1, 5), ElementsAre(0, 0.2, DoubleNear(0.4, 1e-12), DoubleNear(0.6, 1e-12),
                                              DoubleNear(0.8, 1e-12), 1));
  EXPECT_THAT(NiceTicks(1, 10, 5), ElementsAre(0, 2, 4, 6, 8, 10));
  EXPECT_THAT(NiceTicks(3, 3, 5), ElementsAre(3));
  EXPECT_THAT(NiceTicks(-0.37, 12.9, 6), ElementsAre(-2, 0, 2, 4, 6, 8, 10, 12, 14));
  EXPECT_THAT(NiceTicks(0.5, 0.52, 4), ElementsAre(0.5, DoubleNear(0.505, 1e-12), DoubleNear(0.51, 1e-12),
                                                   DoubleNear(0.515, 1e-12), DoubleNear(0.52, 1e-12)));
}

TEST(SvgChartTest, EmptyChartSaysSo) {
  LineChartOptions options;
  options.title = "Loss";
  options.empty_text = "nothing <yet>";
  const std::string svg = RenderLineChart(options, {{"loss", {{1, kNaN}}}});
  EXPECT_THAT(svg, HasSubstr("nothing &lt;yet&gt;"));
  EXPECT_THAT(svg, Not(HasSubstr("<polyline")));
  EXPECT_EQ(Count(svg, "<svg"), 1u);
  EXPECT_EQ(Count(svg, "</svg>"), 1u);
}

TEST(SvgChartTest, DrawsOneLinePerSeriesWithEscapedLegendAndTooltips) {
  LineChartOptions options;
  options.title = "Validation " + kEvil;
  options.y_min = 0;
  options.y_max = 1;
  const std::string svg = RenderLineChart(
      options, {{"accuracy", {{1, 0.5}, {2, 0.7}, {3, 0.9}}}, {kEvil, {{1, 0.2}, {2, 0.3}}}, {"cap", {{1, 0.8}, {3, 0.8}}, true}});
  EXPECT_EQ(Count(svg, "<polyline"), 3u);
  EXPECT_EQ(Count(svg, "<circle"), 5u);  // the dashed cap has no markers
  EXPECT_EQ(Count(svg, "stroke-dasharray"), 2u);  // its line and its legend entry
  EXPECT_THAT(svg, Not(HasSubstr("<script")));
  EXPECT_THAT(svg, HasSubstr("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"));
  EXPECT_THAT(svg, HasSubstr("<title>accuracy: round 2, 0.7</title>"));
  EXPECT_THAT(svg, HasSubstr(ChartColor(0)));
  EXPECT_THAT(svg, HasSubstr(ChartColor(1)));
  // Fixed bounds: the axis runs 0..1 whatever the data.
  EXPECT_THAT(svg, HasSubstr(">0</text>"));
  EXPECT_THAT(svg, HasSubstr(">1</text>"));
}

TEST(SvgChartTest, MissingValuesBreakTheLineAndSinglePointsStillShow) {
  LineChartOptions options;
  const std::string svg =
      RenderLineChart(options, {{"loss", {{1, 2.0}, {2, 1.5}, {3, kNaN}, {4, 1.0}, {5, 0.8}}}, {"single", {{3, 1.2}}}});
  EXPECT_EQ(Count(svg, "<polyline"), 2u);  // 1-2 and 4-5
  EXPECT_EQ(Count(svg, "<circle"), 5u);
}

TEST(SvgChartTest, FlatSeriesAndOneRoundDoNotDivideByZero) {
  LineChartOptions options;
  const std::string svg = RenderLineChart(options, {{"epsilon", {{1, 2.0}}}});
  EXPECT_THAT(svg, Not(HasSubstr("nan")));
  EXPECT_THAT(svg, Not(HasSubstr("inf")));
  EXPECT_EQ(Count(svg, "<circle"), 1u);
}

TEST(SvgChartTest, IntegerAxisHasNoFractionalRounds) {
  LineChartOptions options;
  const std::string svg = RenderLineChart(options, {{"a", {{1, 1}, {2, 2}}}});
  EXPECT_THAT(svg, Not(HasSubstr(">1.5</text>")));
}

DashboardContext Context(absl::Time now = absl::FromUnixSeconds(1'700'000'100)) {
  DashboardContext context;
  context.coordinator_name = "coord<1>";
  context.version = "0.1.0";
  context.now = now;
  context.online_window = absl::Seconds(15);
  context.refresh_seconds = 7;
  return context;
}

JobRecord Job(const std::string& state) {
  JobRecord job;
  job.id = "wdbc-1";
  job.name = "wdbc " + kEvil;
  job.state = state;
  job.rounds = 3;
  job.committed_rounds = 2;
  job.submitted = absl::FromUnixSeconds(1'700'000'000);
  job.submitted_by = "operator";
  if (state == "completed" || state == "failed") job.finished = absl::FromUnixSeconds(1'700'000'090);
  if (state == "failed") job.error = "round 3: too few sites " + kEvil;
  return job;
}

std::vector<RoundRecord> Rounds() {
  std::vector<RoundRecord> rounds(4);
  rounds[0].round = 0;
  rounds[0].state = "committed";
  rounds[0].started = absl::FromUnixSeconds(1'700'000'000);
  rounds[0].finished = absl::FromUnixSeconds(1'700'000'001);
  rounds[0].sites = {{"hospital-a", "contributed", "", 0, 0, 0}};
  for (int r = 1; r <= 3; ++r) {
    RoundRecord& round = rounds[static_cast<size_t>(r)];
    round.round = r;
    round.started = absl::FromUnixSeconds(1'700'000'000 + 10 * r);
    if (r < 3) {
      round.state = "committed";
      round.finished = round.started + absl::Seconds(4 * r);
      round.validation_metrics = {{"accuracy", 0.6 + 0.1 * r}, {"roc_auc", 0.7 + 0.1 * r}, {"loss", 0.7 - 0.1 * r}};
      round.train_metrics = {{"loss", 0.8 - 0.1 * r}};
      round.model_sha256 = "abcdef0123456789abcdef";
    } else {
      round.state = "training";
    }
    round.sites = {{"hospital-a", "contributed", "", 100, 0.5, 0.5 * r},
                   {"hospital-b", r == 2 ? "dropped" : "contributed", r == 2 ? "missed the deadline" : "", 90, 0.4,
                    0.4 * r},
                   {kEvil, "refused", "privacy cap " + kEvil, 0, 0, 0}};
  }
  return rounds;
}

std::vector<SiteRecord> Sites() {
  SiteRecord a;
  a.name = "hospital-a";
  a.fingerprint = "0123456789abcdef0123";
  a.last_seen = absl::FromUnixSeconds(1'700'000'095);  // 5 s before Context().now
  a.agent_version = "0.1.0";
  a.state = "idle";
  SiteRecord b = a;
  b.name = kEvil;
  b.last_seen = absl::FromUnixSeconds(1'700'000'000);  // 100 s before
  b.agent_version = "0.0.9<b>";
  return {a, b};
}

TEST(DashboardPagesTest, JobsPageListsJobsAndSitesEscaped) {
  const std::string html = RenderJobsPage(Context(), {Job("completed")}, Sites());
  EXPECT_THAT(html, HasSubstr("<!DOCTYPE html>"));
  EXPECT_THAT(html, HasSubstr("<a href=\"/jobs/wdbc-1\">wdbc-1</a>"));
  EXPECT_THAT(html, HasSubstr("2 / 3"));
  EXPECT_THAT(html, HasSubstr("coord&lt;1&gt;"));
  EXPECT_THAT(html, HasSubstr("0.0.9&lt;b&gt;"));
  EXPECT_THAT(html, Not(HasSubstr("<script")));
  EXPECT_THAT(html, Not(HasSubstr("http-equiv=\"refresh\"")));  // nothing runs
  EXPECT_EQ(Count(html, "class=\"online\""), 1u);
  EXPECT_EQ(Count(html, "class=\"offline\""), 1u);
  EXPECT_THAT(html, HasSubstr("5 s ago"));
}

TEST(DashboardPagesTest, PagesRefreshWhileAJobRuns) {
  EXPECT_THAT(RenderJobsPage(Context(), {Job("running")}, {}), HasSubstr("<meta http-equiv=\"refresh\" content=\"7\">"));
  EXPECT_THAT(RenderJobPage(Context(), Job("queued"), {}, {}, {}), HasSubstr("http-equiv=\"refresh\""));
  EXPECT_THAT(RenderJobPage(Context(), Job("failed"), Rounds(), {}, {}), Not(HasSubstr("http-equiv=\"refresh\"")));
}

TEST(DashboardPagesTest, EmptyStatesSaySo) {
  EXPECT_THAT(RenderJobsPage(Context(), {}, {}), AllOf(HasSubstr("No job has been submitted yet"),
                                                       HasSubstr("No site has registered yet")));
  const std::string html = RenderJobPage(Context(), Job("queued"), {}, {}, {});
  EXPECT_THAT(html, HasSubstr("No round has started yet"));
  EXPECT_THAT(html, HasSubstr("no data yet"));
  EXPECT_THAT(html, HasSubstr("no site has reported a privacy spend"));
}

TEST(DashboardPagesTest, JobPageHasChartsGridRoundsAndSites) {
  const std::string html = RenderJobPage(Context(), Job("failed"), Rounds(), Sites(), {});
  EXPECT_THAT(html, Not(HasSubstr("<script")));
  EXPECT_EQ(Count(html, "<svg"), 3u);  // scores, loss, privacy
  EXPECT_THAT(html, HasSubstr("Validation accuracy and AUC"));
  EXPECT_THAT(html, HasSubstr(">AUC</text>"));
  EXPECT_THAT(html, HasSubstr(">train loss</text>"));
  EXPECT_THAT(html, HasSubstr(">validation loss</text>"));
  EXPECT_THAT(html, HasSubstr("Privacy spent: cumulative epsilon per site"));
  EXPECT_THAT(html, HasSubstr("error: round 3: too few sites &lt;script&gt;"));
  // Grid: three sites x three rounds.
  EXPECT_THAT(html, HasSubstr("<table id=\"participation\""));
  EXPECT_EQ(Count(html, "class=\"p-contributed\""), 5u);  // a: 1,2,3; b: 1,3
  EXPECT_EQ(Count(html, "class=\"p-dropped\" title=\"dropped: missed the deadline (epsilon 0.8)\""), 1u);
  EXPECT_EQ(Count(html, "class=\"p-refused\""), 3u);
  EXPECT_THAT(html, HasSubstr("title=\"refused: privacy cap &lt;script&gt;"));
  // Rounds table: durations and contribution counts.
  EXPECT_THAT(html, HasSubstr("0 (initial model)"));
  EXPECT_THAT(html, HasSubstr(">8.0 s<"));
  EXPECT_THAT(html, HasSubstr(">1 / 3<"));  // round 2: only hospital-a contributed
  EXPECT_THAT(html, HasSubstr("accuracy 0.8, loss 0.5, roc_auc 0.9"));
  // Caps unknown: the page says so, naming the sites.
  EXPECT_THAT(html, HasSubstr("Privacy caps not known to the coordinator for"));
  EXPECT_THAT(html, HasSubstr("<table id=\"sites\">"));
}

TEST(DashboardPagesTest, KnownCapsAreDrawnAsDashedLinesInTheSiteColour) {
  const std::string html = RenderJobPage(Context(), Job("completed"), Rounds(), Sites(), {{"hospital-a", 3.0}});
  EXPECT_THAT(html, HasSubstr(">hospital-a cap</text>"));
  EXPECT_THAT(html, Not(HasSubstr("for hospital-a,")));
  EXPECT_THAT(html, HasSubstr("Privacy caps not known to the coordinator for"));  // the others
}

TEST(DashboardPagesTest, ErrorPageEscapesTheMessage) {
  const std::string html = RenderErrorPage(Context(), 404, "no job " + kEvil);
  EXPECT_THAT(html, HasSubstr("<h1>404</h1>"));
  EXPECT_THAT(html, HasSubstr("no job &lt;script&gt;"));
  EXPECT_THAT(html, Not(HasSubstr("<script")));
}

TEST(PrometheusMetricsTest, ExposesRoundsBytesSitesRefusalsAndEpsilon) {
  MetricsSnapshot snapshot;
  snapshot.version = "0.1.0";
  snapshot.now = absl::FromUnixSeconds(1'700'000'100);
  snapshot.jobs.push_back({Job("failed"), Rounds()});
  snapshot.sites = Sites();
  snapshot.bytes_sent = 12345;
  snapshot.bytes_received = 678;
  const std::string text = RenderPrometheusMetrics(snapshot);
  EXPECT_THAT(text, HasSubstr("fedattn_build_info{version=\"0.1.0\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("fedattn_sites_registered 2\n"));
  EXPECT_THAT(text, HasSubstr("fedattn_sites_online 1\n"));
  EXPECT_THAT(text, HasSubstr("fedattn_jobs{state=\"failed\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("fedattn_jobs{state=\"running\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE fedattn_rounds_completed_total counter\n"));
  EXPECT_THAT(text, HasSubstr("fedattn_rounds_completed_total{job=\"wdbc-1\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("fedattn_round_duration_seconds_sum{job=\"wdbc-1\"} 12\n"));  // 4 + 8
  EXPECT_THAT(text, HasSubstr("fedattn_round_duration_seconds_count{job=\"wdbc-1\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("fedattn_last_round_duration_seconds{job=\"wdbc-1\"} 8\n"));
  EXPECT_THAT(text, HasSubstr("fedattn_bytes_sent_total 12345\n"));
  EXPECT_THAT(text, HasSubstr("fedattn_bytes_received_total 678\n"));
  EXPECT_THAT(text, HasSubstr("fedattn_site_refusals_total{job=\"wdbc-1\",site=\"hospital-a\"} 0\n"));
  // Label values escape quote and backslash; the raw name never appears unescaped.
  EXPECT_THAT(text, HasSubstr("site=\"<script>alert('x')</script>&\\\"\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("fedattn_site_rounds_total{job=\"wdbc-1\",site=\"hospital-b\",status=\"dropped\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("fedattn_epsilon_spent{job=\"wdbc-1\",site=\"hospital-a\"} 1.5\n"));
  EXPECT_THAT(text, HasSubstr("fedattn_epsilon_spent{job=\"wdbc-1\",site=\"hospital-b\"} 1.2"));
  // Every sample line belongs to a declared family.
  std::istringstream lines(text);
  std::string line, family;
  while (std::getline(lines, line)) {
    if (line.rfind("# TYPE ", 0) == 0) family = line.substr(7, line.find(' ', 7) - 7);
    if (line.empty() || line[0] == '#') continue;
    EXPECT_EQ(line.rfind(family, 0), 0u) << line;
  }
}

absl::StatusOr<CoordinatorOptions> LoadYaml(const testing::TempDir& dir, const std::string& dashboard) {
  std::ofstream(dir / "coordinator.yaml") << "coordinator:\n  name: c\ntls:\n  ca: ca.crt\n  cert: c.crt\n  key: c.key\n"
                                          << dashboard;
  return LoadCoordinatorOptions(dir / "coordinator.yaml");
}

TEST(DashboardOptionsTest, OffByDefaultOnWithASection) {
  testing::TempDir dir;
  auto off = LoadYaml(dir, "");
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->dashboard.enabled);
  auto on = LoadYaml(dir, "dashboard:\n  listen: 127.0.0.1:0\n  token_file: dash.token\n  refresh_seconds: 3\n");
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_TRUE(on->dashboard.enabled);
  EXPECT_EQ(on->dashboard.listen, "127.0.0.1:0");
  EXPECT_EQ(on->dashboard.token_file, dir / "dash.token");
  EXPECT_EQ(on->dashboard.refresh_seconds, 3);
  auto disabled = LoadYaml(dir, "dashboard:\n  enabled: false\n  listen: 0.0.0.0:80\n");
  ASSERT_TRUE(disabled.ok()) << disabled.status();
  EXPECT_FALSE(disabled->dashboard.enabled);
}

TEST(DashboardOptionsTest, NonLoopbackNeedsTlsAndToken) {
  testing::TempDir dir;
  auto plain = LoadYaml(dir, "dashboard:\n  listen: 0.0.0.0:8443\n");
  ASSERT_FALSE(plain.ok());
  EXPECT_THAT(std::string(plain.status().message()),
              AllOf(HasSubstr("coordinator.yaml:"), HasSubstr("is not a loopback address"), HasSubstr("dashboard.tls.cert")));
  auto no_token = LoadYaml(dir, "dashboard:\n  listen: 10.0.0.5:8443\n  tls:\n    cert: d.crt\n    key: d.key\n");
  EXPECT_FALSE(no_token.ok());
  auto full = LoadYaml(dir, "dashboard:\n  listen: 0.0.0.0:8443\n  token_file: t\n  tls:\n    cert: d.crt\n    key: d.key\n");
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(full->dashboard.tls_key, dir / "d.key");
  auto half = LoadYaml(dir, "dashboard:\n  tls:\n    cert: d.crt\n");
  ASSERT_FALSE(half.ok());
  EXPECT_THAT(std::string(half.status().message()), HasSubstr("key"));
  auto bad = LoadYaml(dir, "dashboard:\n  listen: nowhere\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("needs host:port"));
}

TEST(DashboardOptionsTest, LoopbackAddresses) {
  DashboardOptions options;
  for (const char* listen : {"127.0.0.1:1", "127.1.2.3:80", "localhost:8080", "[::1]:8080"}) {
    options.listen = listen;
    EXPECT_TRUE(options.Loopback()) << listen;
  }
  for (const char* listen : {"0.0.0.0:1", "10.0.0.1:80", "[::]:8080", "dashboard.example.org:443", "128.0.0.1:1"}) {
    options.listen = listen;
    EXPECT_FALSE(options.Loopback()) << listen;
  }
}

TEST(DashboardTokenTest, CreatedPrivateAndReadBack) {
  testing::TempDir dir;
  auto token = LoadOrCreateDashboardToken(dir / "dash.token");
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->size(), 64u);
  struct stat info;
  ASSERT_EQ(::stat((dir / "dash.token").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  auto again = LoadOrCreateDashboardToken(dir / "dash.token");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *token);
}

TEST(DashboardTokenTest, RefusesReadableShortOrUnreachableFiles) {
  testing::TempDir dir;
  std::ofstream(dir / "open.token") << "0123456789abcdef0123\n";
  ::chmod((dir / "open.token").c_str(), 0644);
  auto open = LoadOrCreateDashboardToken(dir / "open.token");
  ASSERT_FALSE(open.ok());
  EXPECT_EQ(open.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(open.status().message()), AllOf(HasSubstr("mode 0644"), HasSubstr("chmod 600")));
  std::ofstream(dir / "short.token") << "abc\n";
  ::chmod((dir / "short.token").c_str(), 0600);
  auto short_token = LoadOrCreateDashboardToken(dir / "short.token");
  ASSERT_FALSE(short_token.ok());
  EXPECT_THAT(std::string(short_token.status().message()), HasSubstr("fewer than 16"));
  EXPECT_FALSE(LoadOrCreateDashboardToken(dir / "missing-dir" / "t").ok());
}

TEST(DashboardTokenTest, AcceptsBearerAndBasicPasswordOnly) {
  const std::string token = "0123456789abcdef0123456789abcdef";
  EXPECT_TRUE(DashboardAuthorized("Bearer " + token, token));
  EXPECT_TRUE(DashboardAuthorized("bearer  " + token + " ", token));
  EXPECT_TRUE(DashboardAuthorized("Basic " + absl::Base64Escape("anyone:" + token), token));
  EXPECT_FALSE(DashboardAuthorized("Basic " + absl::Base64Escape(token + ":x"), token));
  EXPECT_FALSE(DashboardAuthorized("Basic !!notbase64", token));
  EXPECT_FALSE(DashboardAuthorized("Bearer " + token.substr(1), token));
  EXPECT_FALSE(DashboardAuthorized("Bearer " + token + "0", token));
  EXPECT_FALSE(DashboardAuthorized(token, token));
  EXPECT_FALSE(DashboardAuthorized("", token));
  EXPECT_FALSE(DashboardAuthorized("Bearer ", ""));
}

// The server in-process over plain HTTP on loopback, reading a real job store.
class DashboardServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = JobStore::Open(dir_.path());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    auto registry = SiteRegistry::Open(dir_.path());
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = *std::move(registry);
    auto id = store_->CreateJob("tiny <job>", "job: {}\n", 2, "operator", clock_.Now());
    ASSERT_TRUE(id.ok()) << id.status();
    job_id_ = *id;
    ASSERT_TRUE(store_->StartRound(job_id_, 1, clock_.Now()).ok());
    ASSERT_TRUE(store_->PutRoundSite(job_id_, 1, {"hospital-a", "contributed", "", 10, 0.3, 0.3}).ok());
    ASSERT_TRUE(store_->PutRoundSite(job_id_, 1, {"hospital-b", "refused", "over its cap", 0, 0, 0}).ok());
    ASSERT_TRUE(store_->CommitRound(job_id_, 1, {{"loss", 0.6}}, {{"accuracy", 0.8}}, "ff00", clock_.Now()).ok());
    ASSERT_TRUE(registry_->Register({"hospital-a", "abcd", "0.1.0", 1, ""}, clock_.Now()).ok());
    options_.name = "coordinator";
    options_.dashboard.enabled = true;
    options_.dashboard.listen = "127.0.0.1:0";
    counters_.bytes_sent = 1000;
  }

  std::unique_ptr<DashboardServer> Start() {
    auto server = DashboardServer::Start({&options_, store_.get(), registry_.get(), &counters_, &clock_, nullptr});
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? *std::move(server) : nullptr;
  }

  testing::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<SiteRegistry> registry_;
  CoordinatorOptions options_;
  TransferCounters counters_;
  std::string job_id_;
};

TEST_F(DashboardServerTest, ServesPagesMetricsAndNotFound) {
  auto server = Start();
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->url(), absl::StrCat("http://127.0.0.1:", server->port(), "/"));
  httplib::Client client("127.0.0.1", server->port());
  auto index = client.Get("/");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->status, 200);
  EXPECT_THAT(index->body, HasSubstr("tiny &lt;job&gt;"));
  EXPECT_THAT(index->get_header_value("Content-Security-Policy"), HasSubstr("default-src 'none'"));
  EXPECT_EQ(index->get_header_value("Cache-Control"), "no-store");
  auto job = client.Get(("/jobs/" + job_id_).c_str());
  ASSERT_TRUE(job);
  EXPECT_EQ(job->status, 200);
  EXPECT_THAT(job->body, HasSubstr("class=\"p-refused\" title=\"refused: over its cap\""));
  EXPECT_THAT(job->body, HasSubstr("http-equiv=\"refresh\""));  // 1 of 2 rounds: still running
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_THAT(metrics->get_header_value("Content-Type"), HasSubstr("text/plain; version=0.0.4"));
  EXPECT_THAT(metrics->body, HasSubstr("fedattn_bytes_sent_total 1000\n"));
  EXPECT_THAT(metrics->body, HasSubstr(absl::StrCat("fedattn_site_refusals_total{job=\"", job_id_,
                                                    "\",site=\"hospital-b\"} 1\n")));
  auto missing = client.Get("/jobs/nope-9");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_THAT(missing->body, HasSubstr("nope-9"));
  auto nowhere = client.Get("/etc/passwd");
  ASSERT_TRUE(nowhere);
  EXPECT_EQ(nowhere->status, 404);
  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->body, "ok\n");
  server->Stop();
  server->Stop();  // idempotent
}

TEST_F(DashboardServerTest, TokenRequiredWhenConfigured) {
  options_.dashboard.token_file = dir_ / "dash.token";
  auto server = Start();
  ASSERT_NE(server, nullptr);
  auto token = LoadOrCreateDashboardToken(options_.dashboard.token_file);
  ASSERT_TRUE(token.ok());
  httplib::Client client("127.0.0.1", server->port());
  auto refused = client.Get("/metrics");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  EXPECT_THAT(refused->get_header_value("WWW-Authenticate"), HasSubstr("Basic"));
  EXPECT_THAT(refused->body, Not(HasSubstr("fedattn_")));
  auto wrong = client.Get("/", {{"Authorization", "Bearer 0000000000000000000000000000000000"}});
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  auto bearer = client.Get("/metrics", {{"Authorization", "Bearer " + *token}});
  ASSERT_TRUE(bearer);
  EXPECT_EQ(bearer->status, 200);
  client.set_basic_auth("operator", token->c_str());
  auto basic = client.Get("/");
  ASSERT_TRUE(basic);
  EXPECT_EQ(basic->status, 200);
  httplib::Client anonymous("127.0.0.1", server->port());
  auto health = anonymous.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST_F(DashboardServerTest, RefusesToStartWithoutTlsOffLoopbackOrWithABadCertificate) {
  options_.dashboard.listen = "0.0.0.0:0";
  auto open = DashboardServer::Start({&options_, store_.get(), registry_.get(), &counters_, &clock_, nullptr});
  ASSERT_FALSE(open.ok());
  EXPECT_THAT(std::string(open.status().message()), HasSubstr("not a loopback address"));
  options_.dashboard.listen = "127.0.0.1:0";
  options_.dashboard.tls_cert = dir_ / "missing.crt";
  options_.dashboard.tls_key = dir_ / "missing.key";
  auto tls = DashboardServer::Start({&options_, store_.get(), registry_.get(), &counters_, &clock_, nullptr});
  ASSERT_FALSE(tls.ok());
  EXPECT_THAT(std::string(tls.status().message()), HasSubstr("cannot load the TLS certificate"));
}

TEST_F(DashboardServerTest, ReportsAnAddressInUse) {
  auto first = Start();
  ASSERT_NE(first, nullptr);
  options_.dashboard.listen = absl::StrCat("127.0.0.1:", first->port());
  auto second = DashboardServer::Start({&options_, store_.get(), registry_.get(), &counters_, &clock_, nullptr});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace fedattn::coordinator
