#include "fedattn/coordinator/prometheus_metrics.h"

#include <map>
#include <optional>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace fedattn::coordinator {
namespace {

// Label values escape backslash, double quote and line feed (exposition format 0.0.4).
std::string LabelValue(absl::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Value(double value) { return absl::StrFormat("%.17g", value); }

void Header(std::string* out, absl::string_view name, absl::string_view type, absl::string_view help) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

}  // namespace

std::string RenderPrometheusMetrics(const MetricsSnapshot& snapshot) {
  std::string out;
  Header(&out, "fedattn_build_info", "gauge", "FedAttn version of this coordinator.");
  absl::StrAppend(&out, "fedattn_build_info{version=\"", LabelValue(snapshot.version), "\"} 1\n");

  int online = 0;
  for (const SiteRecord& site : snapshot.sites) online += snapshot.now - site.last_seen <= snapshot.online_window;
  Header(&out, "fedattn_sites_registered", "gauge", "Sites that have registered with this coordinator.");
  absl::StrAppend(&out, "fedattn_sites_registered ", snapshot.sites.size(), "\n");
  Header(&out, "fedattn_sites_online", "gauge", "Sites heard from within the online window.");
  absl::StrAppend(&out, "fedattn_sites_online ", online, "\n");

  std::map<std::string, int> states = {{"queued", 0}, {"running", 0}, {"completed", 0}, {"failed", 0}, {"cancelled", 0}};
  for (const JobWithRounds& entry : snapshot.jobs) ++states[entry.job.state];
  Header(&out, "fedattn_jobs", "gauge", "Jobs by state.");
  for (const auto& [state, count] : states) absl::StrAppend(&out, "fedattn_jobs{state=\"", LabelValue(state), "\"} ", count, "\n");

  Header(&out, "fedattn_rounds_completed_total", "counter", "Training rounds committed, per job.");
  for (const JobWithRounds& entry : snapshot.jobs) {
    absl::StrAppend(&out, "fedattn_rounds_completed_total{job=\"", LabelValue(entry.job.id), "\"} ",
                    entry.job.committed_rounds, "\n");
  }

  Header(&out, "fedattn_round_duration_seconds", "summary",
         "Wall time of committed training rounds (start to commit), per job.");
  std::string last;
  for (const JobWithRounds& entry : snapshot.jobs) {
    double sum = 0;
    int64_t count = 0;
    std::optional<double> latest;
    for (const RoundRecord& round : entry.rounds) {
      if (round.round == 0 || round.state != "committed" || !round.finished) continue;
      const double seconds = absl::ToDoubleSeconds(*round.finished - round.started);
      sum += seconds;
      ++count;
      latest = seconds;
    }
    const std::string label = absl::StrCat("{job=\"", LabelValue(entry.job.id), "\"}");
    absl::StrAppend(&out, "fedattn_round_duration_seconds_sum", label, " ", Value(sum), "\n");
    absl::StrAppend(&out, "fedattn_round_duration_seconds_count", label, " ", count, "\n");
    if (latest) absl::StrAppend(&last, "fedattn_last_round_duration_seconds", label, " ", Value(*latest), "\n");
  }
  Header(&out, "fedattn_last_round_duration_seconds", "gauge", "Wall time of the latest committed round, per job.");
  out += last;

  Header(&out, "fedattn_bytes_sent_total", "counter",
         "Bytes of model streams sent to sites since the coordinator started (protobuf messages).");
  absl::StrAppend(&out, "fedattn_bytes_sent_total ", snapshot.bytes_sent, "\n");
  Header(&out, "fedattn_bytes_received_total", "counter",
         "Bytes of update streams received from sites since the coordinator started (protobuf messages).");
  absl::StrAppend(&out, "fedattn_bytes_received_total ", snapshot.bytes_received, "\n");

  // Per (job, site): outcomes and the latest cumulative epsilon.
  std::map<std::tuple<std::string, std::string, std::string>, int64_t> outcomes;
  std::map<std::pair<std::string, std::string>, int64_t> refusals;
  std::map<std::pair<std::string, std::string>, double> epsilon;
  for (const JobWithRounds& entry : snapshot.jobs) {
    for (const RoundRecord& round : entry.rounds) {
      if (round.round == 0) continue;
      for (const RoundSiteRecord& site : round.sites) {
        ++outcomes[{entry.job.id, site.site, site.status}];
        auto& refused = refusals[{entry.job.id, site.site}];
        refused += site.status == "refused";
        if (site.epsilon_cumulative > 0) epsilon[{entry.job.id, site.site}] = site.epsilon_cumulative;
      }
    }
  }
  Header(&out, "fedattn_site_refusals_total", "counter",
         "Rounds a site refused (its policy or privacy cap), per job and site.");
  for (const auto& [key, count] : refusals) {
    absl::StrAppend(&out, "fedattn_site_refusals_total{job=\"", LabelValue(key.first), "\",site=\"",
                    LabelValue(key.second), "\"} ", count, "\n");
  }
  Header(&out, "fedattn_site_rounds_total", "counter",
         "Training rounds per job, site and outcome (contributed, trained, selected, refused, failed, dropped).");
  for (const auto& [key, count] : outcomes) {
    absl::StrAppend(&out, "fedattn_site_rounds_total{job=\"", LabelValue(std::get<0>(key)), "\",site=\"",
                    LabelValue(std::get<1>(key)), "\",status=\"", LabelValue(std::get<2>(key)), "\"} ", count, "\n");
  }
  Header(&out, "fedattn_epsilon_spent", "gauge",
         "Cumulative privacy spend (epsilon) a site last reported, per job and site.");
  for (const auto& [key, value] : epsilon) {
    absl::StrAppend(&out, "fedattn_epsilon_spent{job=\"", LabelValue(key.first), "\",site=\"", LabelValue(key.second),
                    "\"} ", Value(value), "\n");
  }
  return out;
}

}  // namespace fedattn::coordinator
