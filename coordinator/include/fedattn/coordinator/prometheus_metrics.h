// The coordinator's /metrics in the Prometheus text exposition format (version 0.0.4). Round,
// site and privacy figures are read from the durable records at each scrape, so they survive a
// restart; byte counters count since the process started.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "fedattn/coordinator/job_store.h"
#include "fedattn/coordinator/site_registry.h"

namespace fedattn::coordinator {

// Bytes of the protobuf messages the site service streams (chunk headers and tensor data; not
// TLS or HTTP/2 framing). Thread-safe: bumped by concurrent streams.
struct TransferCounters {
  std::atomic<uint64_t> bytes_sent{0};      // models streamed to sites (DownloadModel)
  std::atomic<uint64_t> bytes_received{0};  // updates and initial models from sites (UploadUpdate)
};

struct JobWithRounds {
  JobRecord job;
  std::vector<RoundRecord> rounds;
};

struct MetricsSnapshot {
  std::string version;
  absl::Time now;
  absl::Duration online_window = absl::Seconds(15);
  std::vector<JobWithRounds> jobs;
  std::vector<SiteRecord> sites;
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
};

// fedattn_build_info, fedattn_sites_registered, fedattn_sites_online, fedattn_jobs{state},
// fedattn_rounds_completed_total{job}, fedattn_round_duration_seconds{job} (summary: _sum,
// _count over committed training rounds), fedattn_last_round_duration_seconds{job},
// fedattn_bytes_sent_total, fedattn_bytes_received_total, fedattn_site_refusals_total{job,site},
// fedattn_site_rounds_total{job,site,status}, fedattn_epsilon_spent{job,site} (the latest
// cumulative epsilon the site reported). Label values are escaped.
std::string RenderPrometheusMetrics(const MetricsSnapshot& snapshot);

}  // namespace fedattn::coordinator
