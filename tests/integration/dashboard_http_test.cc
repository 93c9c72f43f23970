// The dashboard over HTTP with real processes: a coordinator and two agents on 127.0.0.1 (mutual
// TLS) run a tiny DP job to the end; then the jobs page, the job page and /metrics are fetched over
// HTTP, the job page is rendered by headless Chromium (skipped when it is not installed) into a
// screenshot, and a coordinator with an HTTPS dashboard and an admin token is checked on its own.
#include <httplib.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <regex>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "fedattn/common/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/test_federation.h"

namespace fedattn::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::vector<std::string> kSites = {"hospital-a", "hospital-b"};

// The dashboard URL the coordinator logged ("dashboard listening on http://127.0.0.1:PORT/").
std::string DashboardUrl(const Subprocess& coordinator) {
  if (!coordinator.WaitForLog("dashboard listening on ", absl::Seconds(20))) return "";
  std::smatch match;
  const std::string log = coordinator.Log();
  if (!std::regex_search(log, match, std::regex("dashboard listening on (https?://127\\.0\\.0\\.1:([0-9]+)/)"))) return "";
  return match[1];
}

int PortOf(const std::string& url) {
  int port = 0;
  const size_t colon = url.rfind(':');
  (void)absl::SimpleAtoi(url.substr(colon + 1, url.size() - colon - 2), &port);
  return port;
}

// The value of the sample `name` (exact series, labels included) in Prometheus text; -1 if absent.
double Sample(const std::string& metrics, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(metrics, '\n')) {
    if (absl::StartsWith(line, series + " ")) {
      double value = -1;
      if (absl::SimpleAtod(line.substr(series.size() + 1), &value)) return value;
    }
  }
  return -1;
}

// The executable `name` in $PATH, or "" (RunCommand takes a path, not a name).
std::string FindInPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path == nullptr ? "/usr/bin:/bin" : path, ':')) {
    const std::filesystem::path candidate = std::filesystem::path(std::string(dir)) / name;
    if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return "";
}

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

// Two sites, a tiny FT-Transformer, two rounds of DP-SGD: each site reports a cumulative epsilon.
class DashboardTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    federation_ = new TestFederation(kSites);
    const std::filesystem::path root = federation_->root();
    std::ifstream in(std::filesystem::path(FEDATTN_SOURCE_DIR) / "data" / "wdbc.csv");
    std::string header, line;
    std::getline(in, header);
    std::vector<std::ofstream> outs;
    for (const std::string& site : kSites) {
      outs.emplace_back(root / (site + ".csv"));
      outs.back() << header << "\n";
    }
    for (size_t row = 0; std::getline(in, line); ++row) outs[row % outs.size()] << line << "\n";
    for (auto& out : outs) out.close();

    federation_->SetCoordinatorExtraYaml("dashboard:\n  listen: 127.0.0.1:0\n  refresh_seconds: 2\n");
    coordinator_ = federation_->StartCoordinator().release();
    url_ = new std::string(DashboardUrl(*coordinator_));
    for (const std::string& site : kSites) {
      agents_.push_back(
          // hospital-a sets a privacy cap: the coordinator learns it from its signed ledger entries.
          federation_->StartAgent(site, absl::StrCat("data:\n  path: ", (root / (site + ".csv")).string(), "\n",
                                                     site == "hospital-a"
                                                         ? "policy:\n  epsilon_max: 50\n  delta: 1.0e-5\n"
                                                         : ""))
              .release());
    }
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      const nlohmann::json json = nlohmann::json::parse(federation_->Status().output, nullptr, false);
      if (json.is_object() && json.value("sites_online", 0) == static_cast<int>(kSites.size())) break;
      absl::SleepFor(absl::Milliseconds(200));
    }
    const std::filesystem::path source(FEDATTN_SOURCE_DIR);
    const std::filesystem::path job = root / "tiny.yaml";
    std::ofstream(job) << absl::StrCat(
        "job:\n  name: tiny\n  seed: 3\n"
        "  model:\n    kind: tabular_transformer\n    task: classification\n    d_model: 8\n    num_layers: 1\n"
        "    num_heads: 2\n    ffn_dim: 16\n    dropout: 0.0\n    attention_dropout: 0.0\n"
        "  data:\n    kind: tabular\n    schema: ",
        (source / "configs/data/wdbc.schema.yaml").string(),
        "\n    validation_fraction: 0.2\n  rounds: 2\n  sites:\n    fraction: 1.0\n    min_sites: 2\n"
        "  strategy:\n    name: fedavg\n"
        "  local:\n    epochs: 1\n    batch_size: 32\n    lr: 3.0e-3\n    threads: 1\n"
        "  privacy:\n    sample_level:\n      enabled: true\n      noise_multiplier: 1.0\n      max_grad_norm: 1.0\n"
        "      delta: 1.0e-5\n  secagg:\n    enabled: false\n  deadlines:\n    train_s: 60\n    stage_s: 20\n");
    const CommandResult submitted = federation_->Cli({"job", "submit", job.string()});
    for (absl::string_view out_line : absl::StrSplit(submitted.output, '\n')) {
      if (!out_line.empty() && out_line.find(' ') == absl::string_view::npos) job_id_ = new std::string(out_line);
    }
    if (job_id_ == nullptr) {
      job_id_ = new std::string();
      return;
    }
    waited_ = new CommandResult(
        federation_->Cli({"job", "wait", *job_id_, "--timeout", "240", "--interval", "0.5"}, absl::Seconds(260)));
  }

  static void TearDownTestSuite() {
    for (Subprocess* agent : agents_) delete agent;
    agents_.clear();
    delete coordinator_;
    delete federation_;
    delete url_;
    delete job_id_;
    delete waited_;
  }

  void SetUp() override {
    ASSERT_FALSE(url_->empty()) << "no dashboard URL in the coordinator's log:\n" << coordinator_->Log();
    ASSERT_FALSE(job_id_->empty()) << "the job was not submitted";
    ASSERT_NE(waited_, nullptr);
    ASSERT_EQ(waited_->exit_code, 0) << waited_->output << "\n" << coordinator_->Log();
  }

  // The jobs page; the job page (charts, participation, budget, rounds); /metrics.
  static void CheckJobsPage();
  static void CheckJobPage();
  static void CheckMetrics();

  static httplib::Result Get(const std::string& path) {
    httplib::Client client("127.0.0.1", PortOf(*url_));
    client.set_read_timeout(10, 0);
    return client.Get(path.c_str());
  }

  static TestFederation* federation_;
  static Subprocess* coordinator_;
  static std::vector<Subprocess*> agents_;
  static std::string* url_;
  static std::string* job_id_;
  static CommandResult* waited_;
};

TestFederation* DashboardTest::federation_ = nullptr;
Subprocess* DashboardTest::coordinator_ = nullptr;
std::vector<Subprocess*> DashboardTest::agents_;
std::string* DashboardTest::url_ = nullptr;
std::string* DashboardTest::job_id_ = nullptr;
CommandResult* DashboardTest::waited_ = nullptr;

void DashboardTest::CheckJobsPage() {
  EXPECT_THAT(*url_, ::testing::StartsWith("http://127.0.0.1:"));
  const httplib::Result page = Get("/");
  ASSERT_TRUE(page) << httplib::to_string(page.error());
  EXPECT_EQ(page->status, 200);
  EXPECT_THAT(page->get_header_value("Content-Type"), HasSubstr("text/html"));
  EXPECT_THAT(page->body, HasSubstr(absl::StrCat("<a href=\"/jobs/", *job_id_, "\">")));
  EXPECT_THAT(page->body, HasSubstr("completed"));
  EXPECT_THAT(page->body, HasSubstr("2 / 2"));
  EXPECT_THAT(page->body, Not(HasSubstr("http-equiv=\"refresh\"")));  // the job has finished
  for (const std::string& site : kSites) EXPECT_THAT(page->body, HasSubstr(absl::StrCat("<td>", site, "</td>")));
  EXPECT_EQ(Count(page->body, "class=\"online\""), kSites.size());
}

void DashboardTest::CheckJobPage() {
  const httplib::Result page = Get("/jobs/" + *job_id_);
  ASSERT_TRUE(page) << httplib::to_string(page.error());
  ASSERT_EQ(page->status, 200);
  const std::string& html = page->body;
  EXPECT_THAT(html, Not(HasSubstr("<script")));
  EXPECT_EQ(Count(html, "<svg"), 3u);
  EXPECT_THAT(html, HasSubstr(">accuracy</text>"));
  EXPECT_THAT(html, HasSubstr(">train loss</text>"));
  // Both sites in the privacy chart, with markers for both rounds.
  for (const std::string& site : kSites) {
    EXPECT_THAT(html, HasSubstr(absl::StrCat(">", site, "</text>")));
    EXPECT_THAT(html, HasSubstr(absl::StrCat("<title>", site, ": round 2, ")));
  }
  EXPECT_THAT(html, HasSubstr(">hospital-a cap</text>"));  // a dashed line at epsilon 50
  EXPECT_THAT(html, HasSubstr("Privacy caps not known to the coordinator for hospital-b:"));
  EXPECT_EQ(Count(html, "class=\"p-contributed\""), 4u);  // 2 sites x 2 rounds
  EXPECT_THAT(html, HasSubstr("0 (initial model)"));
  EXPECT_EQ(Count(html, ">committed</span>"), 3u);  // rounds 0, 1, 2
  EXPECT_THAT(html, HasSubstr(">2 / 2<"));
  const httplib::Result missing = Get("/jobs/no-such-job");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

void DashboardTest::CheckMetrics() {
  const httplib::Result page = Get("/metrics");
  ASSERT_TRUE(page) << httplib::to_string(page.error());
  ASSERT_EQ(page->status, 200);
  const std::string& metrics = page->body;
  const std::string job = absl::StrCat("job=\"", *job_id_, "\"");
  EXPECT_EQ(Sample(metrics, absl::StrCat("fedattn_rounds_completed_total{", job, "}")), 2) << metrics;
  EXPECT_EQ(Sample(metrics, absl::StrCat("fedattn_round_duration_seconds_count{", job, "}")), 2);
  EXPECT_GT(Sample(metrics, absl::StrCat("fedattn_round_duration_seconds_sum{", job, "}")), 0);
  EXPECT_EQ(Sample(metrics, "fedattn_jobs{state=\"completed\"}"), 1);
  EXPECT_EQ(Sample(metrics, "fedattn_sites_registered"), 2);
  EXPECT_EQ(Sample(metrics, "fedattn_sites_online"), 2);
  // Two sites downloaded the model in two rounds and uploaded their updates (plus the initial model).
  EXPECT_GT(Sample(metrics, "fedattn_bytes_sent_total"), 0);
  EXPECT_GT(Sample(metrics, "fedattn_bytes_received_total"), 0);
  for (const std::string& site : kSites) {
    const std::string labels = absl::StrCat("{", job, ",site=\"", site, "\"}");
    EXPECT_EQ(Sample(metrics, "fedattn_site_refusals_total" + labels), 0);
    EXPECT_GT(Sample(metrics, "fedattn_epsilon_spent" + labels), 0);
    EXPECT_EQ(Sample(metrics, absl::StrCat("fedattn_site_rounds_total{", job, ",site=\"", site,
                                           "\",status=\"contributed\"}")),
              2);
  }
}

// ctest runs every test in a process of its own, each running the job: so few tests, each checking much.
TEST_F(DashboardTest, FinishedJobPagesAndMetricsOverHttp) {
  {
    SCOPED_TRACE("jobs page");
    CheckJobsPage();
  }
  {
    SCOPED_TRACE("job page");
    CheckJobPage();
  }
  {
    SCOPED_TRACE("metrics");
    CheckMetrics();
  }
}

TEST_F(DashboardTest, ChromiumRendersTheJobPage) {
  const std::string chromium = FindInPath("chromium");
  if (chromium.empty()) GTEST_SKIP() << "chromium is not installed (scripts/setup.sh installs it)";
  const std::filesystem::path out_dir(FEDATTN_SCREENSHOT_DIR);
  std::filesystem::create_directories(out_dir);
  const std::filesystem::path png = out_dir / "dashboard-job.png";
  std::filesystem::remove(png);
  // As root Chromium needs --no-sandbox; its profile goes into the test's directory.
  const CommandResult result = RunCommand(
      {chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
       "--user-data-dir=" + (federation_->root() / "chromium").string(), "--window-size=1200,1160",
       "--screenshot=" + png.string(), absl::StrCat(*url_, "jobs/", *job_id_)},
      absl::Seconds(90));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  auto bytes = ReadFile(png);
  ASSERT_TRUE(bytes.ok()) << bytes.status() << "\n" << result.output;
  ASSERT_GT(bytes->size(), 20000u) << "a blank page?";
  EXPECT_EQ(bytes->substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  std::cout << "screenshot: " << png.string() << "\n";
}

// A dashboard served beyond loopback must use HTTPS and a token; here on 127.0.0.1 with the
// coordinator kit's certificate, checked against the consortium CA like a browser would.
TEST(DashboardTlsTest, HttpsDashboardNeedsTheToken) {
  TestFederation federation({"hospital-a"});
  federation.SetCoordinatorExtraYaml(
      "dashboard:\n  listen: 127.0.0.1:0\n  token_file: dashboard.token\n"
      "  tls:\n    cert: coordinator.crt\n    key: coordinator.key\n");
  std::unique_ptr<Subprocess> coordinator = federation.StartCoordinator();
  const std::string url = DashboardUrl(*coordinator);
  ASSERT_THAT(url, ::testing::StartsWith("https://127.0.0.1:")) << coordinator->Log();
  const std::filesystem::path token_file = federation.Kit("coordinator") / "dashboard.token";
  EXPECT_EQ(std::filesystem::status(token_file).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto token = ReadFile(token_file);
  ASSERT_TRUE(token.ok()) << token.status();
  const std::string bearer(absl::StripAsciiWhitespace(*token));

  httplib::SSLClient client("127.0.0.1", PortOf(url));
  client.set_ca_cert_path((federation.Kit("coordinator") / "ca.crt").c_str());
  client.enable_server_certificate_verification(true);
  const httplib::Result anonymous = client.Get("/metrics");
  ASSERT_TRUE(anonymous) << httplib::to_string(anonymous.error());
  EXPECT_EQ(anonymous->status, 401);
  EXPECT_THAT(anonymous->body, Not(HasSubstr("fedattn_")));
  const httplib::Result wrong = client.Get("/", {{"Authorization", "Bearer " + std::string(64, '0')}});
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  const httplib::Result metrics = client.Get("/metrics", {{"Authorization", "Bearer " + bearer}});
  ASSERT_TRUE(metrics) << httplib::to_string(metrics.error());
  EXPECT_EQ(metrics->status, 200);
  EXPECT_EQ(Sample(metrics->body, "fedattn_sites_registered"), 0);
  client.set_basic_auth("operator", bearer.c_str());
  const httplib::Result page = client.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_THAT(page->body, HasSubstr("No job has been submitted yet"));
  // Plain HTTP to the HTTPS port gets no page.
  httplib::Client plain("127.0.0.1", PortOf(url));
  const httplib::Result refused = plain.Get("/");
  EXPECT_TRUE(!refused || refused->status != 200);
  EXPECT_THAT(coordinator->Log(), HasSubstr("refused GET /metrics from 127.0.0.1: missing or wrong admin token"));
}

TEST(DashboardTlsTest, CoordinatorRefusesAnOpenDashboardBeyondLoopback) {
  TestFederation federation({"hospital-a"});
  const std::filesystem::path kit = federation.Kit("coordinator");
  std::ofstream(kit / "open.yaml") << "coordinator:\n  name: coordinator\n  listen: 127.0.0.1:0\n"
                                      "tls:\n  ca: ca.crt\n  cert: coordinator.crt\n  key: coordinator.key\n"
                                      "dashboard:\n  listen: 0.0.0.0:0\n";
  const CommandResult result = RunCommand({CoordinatorBinary(), "--config", (kit / "open.yaml").string()});
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_THAT(result.output, HasSubstr("is not a loopback address"));
  EXPECT_THAT(result.output, HasSubstr("dashboard.token_file"));
}

}  // namespace
}  // namespace fedattn::testing
