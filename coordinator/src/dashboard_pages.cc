#include "fedattn/coordinator/dashboard_pages.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "fedattn/coordinator/svg_chart.h"

namespace fedattn::coordinator {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

constexpr absl::string_view kStyle = R"css(
body{font-family:"DejaVu Sans",Arial,Helvetica,sans-serif;margin:0;color:#1a1a1a;background:#f6f7f9}
header{background:#1f3b57;color:#fff;padding:10px 20px}
header a{color:#fff;text-decoration:none;font-weight:bold}
header span{margin-left:16px;opacity:.85;font-size:13px}
main{padding:12px 20px}
h1{font-size:20px;margin:10px 0}
h2{font-size:16px;margin:18px 0 8px}
table{border-collapse:collapse;background:#fff;font-size:13px}
th,td{border:1px solid #d0d4da;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.charts{display:flex;flex-wrap:wrap;gap:12px}
.charts svg{border:1px solid #d0d4da;background:#fff}
.state{font-weight:bold}
.s-running,.s-queued,.s-training{color:#0b62a4}
.s-completed,.s-committed{color:#1b7f3b}
.s-failed{color:#b3261e}
.s-cancelled{color:#6b6b6b}
.grid td{text-align:center;min-width:26px;font-weight:bold}
.p-contributed{background:#cdebd5;color:#14532d}
.p-trained,.p-selected{background:#dbe9f6;color:#0b3d66}
.p-refused{background:#fde2b8;color:#7a4100}
.p-failed{background:#f6c6c2;color:#7f1d1d}
.p-dropped{background:#e4d7ee;color:#4c1d6b}
.online{color:#1b7f3b;font-weight:bold}
.offline{color:#b3261e;font-weight:bold}
.note{color:#555;font-size:13px;max-width:60em}
.error{color:#b3261e}
footer{color:#666;font-size:12px;padding:12px 20px}
)css";

std::string UtcTime(absl::Time time) {
  if (time == absl::InfinitePast() || time == absl::UnixEpoch()) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%SZ", time, absl::UTCTimeZone());
}

std::string Ago(absl::Time now, absl::Time then) {
  const int64_t seconds = std::max<int64_t>(0, absl::ToInt64Seconds(now - then));
  if (seconds < 120) return absl::StrCat(seconds, " s ago");
  if (seconds < 7200) return absl::StrCat(seconds / 60, " min ago");
  if (seconds < 172800) return absl::StrCat(seconds / 3600, " h ago");
  return absl::StrCat(seconds / 86400, " d ago");
}

std::string StateSpan(absl::string_view state) {
  // The class name is derived from the escaped state: unknown states just get no colour.
  return absl::StrCat("<span class=\"state s-", HtmlEscape(state), "\">", HtmlEscape(state), "</span>");
}

std::string MetricText(const MetricMap& metrics) {
  std::vector<std::string> parts;
  for (const auto& [name, value] : metrics) parts.push_back(absl::StrFormat("%s %.4g", HtmlEscape(name), value));
  return parts.empty() ? "-" : absl::StrJoin(parts, ", ");
}

std::string Page(const DashboardContext& context, absl::string_view title, bool refresh, absl::string_view body) {
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  if (refresh) absl::StrAppend(&out, "<meta http-equiv=\"refresh\" content=\"", context.refresh_seconds, "\">\n");
  absl::StrAppend(&out, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
                  HtmlEscape(title), " - FedAttn</title>\n<style>", kStyle, "</style>\n</head>\n<body>\n");
  absl::StrAppend(&out, "<header><a href=\"/\">FedAttn dashboard</a><span>coordinator ",
                  HtmlEscape(context.coordinator_name), "</span><span>version ", HtmlEscape(context.version),
                  "</span></header>\n<main>\n", body, "</main>\n<footer>rendered ", UtcTime(context.now),
                  refresh ? absl::StrCat(" &middot; refreshes every ", context.refresh_seconds, " s while a job runs")
                          : std::string(),
                  " &middot; <a href=\"/metrics\">/metrics</a></footer>\n</body>\n</html>\n");
  return out;
}

std::string SitesTable(const DashboardContext& context, const std::vector<SiteRecord>& sites) {
  if (sites.empty()) return "<p class=\"note\">No site has registered yet.</p>\n";
  std::string out =
      "<table id=\"sites\">\n<tr><th>site</th><th>status</th><th>last seen</th><th>agent version</th>"
      "<th>ranks</th><th>agent state</th><th>certificate (SHA-256)</th></tr>\n";
  for (const SiteRecord& site : sites) {
    const bool online = context.now - site.last_seen <= context.online_window;
    absl::StrAppend(&out, "<tr><td>", HtmlEscape(site.name), "</td><td class=\"", online ? "online" : "offline", "\">",
                    online ? "online" : "offline", "</td><td>", Ago(context.now, site.last_seen), " (",
                    UtcTime(site.last_seen), ")</td><td>", HtmlEscape(site.agent_version), "</td><td class=\"num\">",
                    site.world_size, "</td><td>", HtmlEscape(site.state), "</td><td><code>",
                    HtmlEscape(site.fingerprint.substr(0, 16)), "</code></td></tr>\n");
  }
  return out + "</table>\n";
}

double Metric(const MetricMap& metrics, const std::string& name) {
  const auto it = metrics.find(name);
  return it == metrics.end() ? kNaN : it->second;
}

bool AnyFinite(const ChartSeries& series) {
  return std::any_of(series.points.begin(), series.points.end(),
                     [](const auto& p) { return std::isfinite(p.second); });
}

// One series per metric name that appears in any round (from `pick`), in `names` order.
std::vector<ChartSeries> MetricSeries(const std::vector<RoundRecord>& rounds,
                                      const std::vector<std::pair<std::string, std::string>>& names,
                                      bool validation) {
  std::vector<ChartSeries> out;
  for (const auto& [metric, label] : names) {
    ChartSeries series;
    series.name = label;
    for (const RoundRecord& round : rounds) {
      if (round.round == 0) continue;  // the initial model has no metrics
      series.points.emplace_back(static_cast<double>(round.round),
                                 Metric(validation ? round.validation_metrics : round.train_metrics, metric));
    }
    if (AnyFinite(series)) out.push_back(std::move(series));
  }
  return out;
}

std::string ParticipationCell(const RoundSiteRecord* site) {
  if (site == nullptr) return "<td title=\"not selected\"></td>";
  static const std::map<std::string, std::string> kMarks = {
      {"contributed", "&#10003;"}, {"trained", "T"}, {"selected", "&hellip;"},
      {"refused", "R"},            {"failed", "F"},  {"dropped", "D"}};
  const auto mark = kMarks.find(site->status);
  std::string title = site->status;
  if (!site->reason.empty()) absl::StrAppend(&title, ": ", site->reason);
  if (site->epsilon_cumulative > 0) absl::StrAppend(&title, absl::StrFormat(" (epsilon %.4g)", site->epsilon_cumulative));
  return absl::StrCat("<td class=\"p-", HtmlEscape(site->status), "\" title=\"", HtmlEscape(title), "\">",
                      mark == kMarks.end() ? HtmlEscape(site->status.substr(0, 1)) : mark->second, "</td>");
}

}  // namespace

std::string RenderJobsPage(const DashboardContext& context, const std::vector<JobRecord>& jobs,
                           const std::vector<SiteRecord>& sites) {
  bool unfinished = false;
  std::string body = "<h1>Jobs</h1>\n";
  if (jobs.empty()) {
    body += "<p class=\"note\">No job has been submitted yet (<code>fedattn job submit JOB.yaml</code>).</p>\n";
  } else {
    body +=
        "<table id=\"jobs\">\n<tr><th>job</th><th>name</th><th>state</th><th>rounds committed</th>"
        "<th>submitted (UTC)</th><th>finished (UTC)</th><th>by</th><th>error</th></tr>\n";
    for (const JobRecord& job : jobs) {
      unfinished = unfinished || !job.Finished();
      absl::StrAppend(&body, "<tr><td><a href=\"/jobs/", HtmlEscape(job.id), "\">", HtmlEscape(job.id),
                      "</a></td><td>", HtmlEscape(job.name), "</td><td>", StateSpan(job.state),
                      "</td><td class=\"num\">", job.committed_rounds, " / ", job.rounds, "</td><td>",
                      UtcTime(job.submitted), "</td><td>", job.finished ? UtcTime(*job.finished) : "-", "</td><td>",
                      HtmlEscape(job.submitted_by), "</td><td class=\"error\">", HtmlEscape(job.error),
                      "</td></tr>\n");
    }
    body += "</table>\n";
  }
  body += "<h2>Sites</h2>\n" + SitesTable(context, sites);
  return Page(context, "Jobs", unfinished, body);
}

std::string RenderJobPage(const DashboardContext& context, const JobRecord& job,
                          const std::vector<RoundRecord>& rounds, const std::vector<SiteRecord>& sites,
                          const EpsilonCaps& caps) {
  std::string body = absl::StrCat("<h1>Job ", HtmlEscape(job.id), " <small>", HtmlEscape(job.name), "</small></h1>\n");
  absl::StrAppend(&body, "<p id=\"summary\">", StateSpan(job.state), " &middot; ", job.committed_rounds, " of ",
                  job.rounds, " rounds committed &middot; submitted ", UtcTime(job.submitted),
                  job.submitted_by.empty() ? "" : absl::StrCat(" by ", HtmlEscape(job.submitted_by)),
                  job.finished ? absl::StrCat(" &middot; finished ", UtcTime(*job.finished)) : "", "</p>\n");
  if (!job.error.empty()) absl::StrAppend(&body, "<p class=\"error\">error: ", HtmlEscape(job.error), "</p>\n");

  // Charts: validation scores, losses, privacy spend.
  std::vector<ChartSeries> scores = MetricSeries(
      rounds, {{"accuracy", "accuracy"}, {"roc_auc", "AUC"}, {"macro_f1", "macro F1"}, {"r2", "R\u00b2"}}, true);
  std::vector<ChartSeries> losses = MetricSeries(rounds, {{"loss", "train loss"}}, false);
  for (ChartSeries& s : MetricSeries(rounds, {{"loss", "validation loss"}, {"rmse", "validation RMSE"}}, true)) {
    losses.push_back(std::move(s));
  }
  LineChartOptions score_options;
  score_options.title = "Validation accuracy and AUC";
  score_options.y_label = "score";
  score_options.y_min = 0;
  score_options.y_max = 1;
  LineChartOptions loss_options;
  loss_options.title = "Loss";
  loss_options.y_label = "loss";
  loss_options.y_min = 0;

  std::set<std::string> site_names;
  for (const RoundRecord& round : rounds) {
    for (const RoundSiteRecord& site : round.sites) site_names.insert(site.site);
  }
  std::vector<ChartSeries> budget;
  int64_t first_round = 0, last_round = 0;
  for (const RoundRecord& round : rounds) {
    if (round.round == 0) continue;
    if (first_round == 0) first_round = round.round;
    last_round = round.round;
  }
  int color = 0;
  for (const std::string& name : site_names) {
    ChartSeries spent;
    spent.name = name;
    spent.color = color;
    for (const RoundRecord& round : rounds) {
      for (const RoundSiteRecord& site : round.sites) {
        if (site.site == name && site.epsilon_cumulative > 0) {
          spent.points.emplace_back(static_cast<double>(round.round), site.epsilon_cumulative);
        }
      }
    }
    if (!spent.points.empty()) budget.push_back(std::move(spent));
    const auto cap = caps.find(name);
    if (cap != caps.end() && first_round > 0) {
      ChartSeries line;
      line.name = absl::StrCat(name, " cap");
      line.dashed = true;
      line.color = color;
      line.points = {{static_cast<double>(first_round), cap->second}, {static_cast<double>(last_round), cap->second}};
      budget.push_back(std::move(line));
    }
    ++color;
  }
  LineChartOptions budget_options;
  budget_options.title = "Privacy spent: cumulative epsilon per site";
  budget_options.y_label = "epsilon";
  budget_options.y_min = 0;
  budget_options.empty_text = "no site has reported a privacy spend";

  absl::StrAppend(&body, "<h2>Training</h2>\n<div class=\"charts\">\n", RenderLineChart(score_options, scores),
                  RenderLineChart(loss_options, losses), "</div>\n");
  absl::StrAppend(&body, "<h2>Privacy budget</h2>\n<div class=\"charts\">\n", RenderLineChart(budget_options, budget),
                  "</div>\n");
  std::vector<std::string> unknown_caps;
  for (const std::string& name : site_names) {
    if (!caps.count(name)) unknown_caps.push_back(HtmlEscape(name));
  }
  if (!unknown_caps.empty() && !site_names.empty()) {
    absl::StrAppend(&body, "<p class=\"note\">Privacy caps not known to the coordinator for ",
                    absl::StrJoin(unknown_caps, ", "),
                    ": each site enforces its own cap (its site.yaml <code>policy.epsilon_max</code>) and refuses a "
                    "round that would exceed it; the chart shows the cumulative epsilon each site reported.</p>\n");
  }

  // Participation grid: site x round.
  body += "<h2>Participation</h2>\n";
  std::vector<const RoundRecord*> grid_rounds;
  for (const RoundRecord& round : rounds) {
    if (round.round > 0) grid_rounds.push_back(&round);
  }
  if (grid_rounds.empty() || site_names.empty()) {
    body += "<p class=\"note\">No training round has started yet.</p>\n";
  } else {
    body += "<table id=\"participation\" class=\"grid\">\n<tr><th>site \\ round</th>";
    for (const RoundRecord* round : grid_rounds) absl::StrAppend(&body, "<th>", round->round, "</th>");
    body += "</tr>\n";
    for (const std::string& name : site_names) {
      absl::StrAppend(&body, "<tr><th>", HtmlEscape(name), "</th>");
      for (const RoundRecord* round : grid_rounds) {
        const RoundSiteRecord* found = nullptr;
        for (const RoundSiteRecord& site : round->sites) {
          if (site.site == name) found = &site;
        }
        body += ParticipationCell(found);
      }
      body += "</tr>\n";
    }
    body +=
        "</table>\n<p class=\"note\">&#10003; contributed to the aggregate &middot; T trained, not (yet) "
        "aggregated &middot; &hellip; selected &middot; R refused (site policy or privacy cap) &middot; F failed "
        "&middot; D dropped (missed a deadline) &middot; empty: not selected. Hover a cell for the reason.</p>\n";
  }

  // Rounds table.
  body += "<h2>Rounds</h2>\n";
  if (rounds.empty()) {
    body += "<p class=\"note\">No round has started yet.</p>\n";
  } else {
    body +=
        "<table id=\"rounds\">\n<tr><th>round</th><th>state</th><th>started (UTC)</th><th>duration</th>"
        "<th>sites contributed</th><th>validation</th><th>train</th><th>model SHA-256</th></tr>\n";
    for (const RoundRecord& round : rounds) {
      int contributed = 0;
      for (const RoundSiteRecord& site : round.sites) contributed += site.status == "contributed";
      const std::string duration =
          round.finished ? absl::StrFormat("%.1f s", absl::ToDoubleSeconds(*round.finished - round.started)) : "-";
      absl::StrAppend(&body, "<tr><td class=\"num\">", round.round, round.round == 0 ? " (initial model)" : "",
                      "</td><td>", StateSpan(round.state), "</td><td>", UtcTime(round.started),
                      "</td><td class=\"num\">", duration, "</td><td class=\"num\">", contributed, " / ",
                      round.sites.size(), "</td><td>", MetricText(round.validation_metrics), "</td><td>",
                      MetricText(round.train_metrics), "</td><td><code>", HtmlEscape(round.model_sha256.substr(0, 16)),
                      "</code></td></tr>\n");
      if (!round.error.empty()) {
        absl::StrAppend(&body, "<tr><td></td><td colspan=\"7\" class=\"error\">round failed: ",
                        HtmlEscape(round.error), "</td></tr>\n");
      }
    }
    body += "</table>\n";
  }
  body += "<h2>Sites</h2>\n" + SitesTable(context, sites);
  return Page(context, absl::StrCat("Job ", job.id), !job.Finished(), body);
}

std::string RenderErrorPage(const DashboardContext& context, int http_status, absl::string_view message) {
  return Page(context, absl::StrCat("Error ", http_status),
              /*refresh=*/false,
              absl::StrCat("<h1>", http_status, "</h1>\n<p class=\"error\">", HtmlEscape(message),
                           "</p>\n<p><a href=\"/\">All jobs</a></p>\n"));
}

}  // namespace fedattn::coordinator
