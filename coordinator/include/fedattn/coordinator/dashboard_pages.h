// The dashboard's HTML pages (docs/operations.md, "Dashboard"), rendered from the coordinator's
// records: self-contained HTML5 with inline CSS and server-rendered SVG charts (svg_chart.h), no
// script, no external asset. Every string that comes from a record is escaped.
//
// Pure functions of their inputs; thread-safe.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fedattn/coordinator/job_store.h"
#include "fedattn/coordinator/site_registry.h"

namespace fedattn::coordinator {

struct DashboardContext {
  std::string coordinator_name;
  std::string version;
  absl::Time now;
  absl::Duration online_window = absl::Seconds(15);  // a site heard from within it is online
  int refresh_seconds = 5;  // pages showing an unfinished job reload themselves this often
};

// A site's privacy cap as the coordinator knows it (epsilon at delta), drawn as a dashed line in
// the budget chart. Sites enforce their own caps; where the coordinator has no figure the page
// says so and shows what each site has reported spending.
using EpsilonCaps = std::map<std::string, double>;

// "/": every job (state, rounds, submitted) and every site (online, last seen, version).
std::string RenderJobsPage(const DashboardContext& context, const std::vector<JobRecord>& jobs,
                           const std::vector<SiteRecord>& sites);

// "/jobs/<id>": the job, its metric charts (validation scores; train and validation loss), each
// site's cumulative epsilon per round against its cap, the participation grid (site x round:
// contributed, dropped, refused, failed, ...), the rounds table and the sites' status.
std::string RenderJobPage(const DashboardContext& context, const JobRecord& job,
                          const std::vector<RoundRecord>& rounds, const std::vector<SiteRecord>& sites,
                          const EpsilonCaps& caps);

// A page for a failed request (404 unknown job, 500 state unreadable).
std::string RenderErrorPage(const DashboardContext& context, int http_status, absl::string_view message);

}  // namespace fedattn::coordinator
