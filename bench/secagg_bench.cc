// SecAgg+ benchmark (issue 5): per-stage client and server time, bytes per client, and the mask
// stages compared with this machine's raw AES-128-CTR expansion speed measured in the same run.
//
//   secagg_bench                 the full table: n in {10,50,100}, d in {1e5,1e6,1e7},
//                                dropout in {0, 0.1} (about a minute on 2 cores)
//   secagg_bench --quick         n in {10,100}, d in {1e5,1e6}
//   secagg_bench --n=100 --d=1000000 --dropout=0.1 [--k=21]   one configuration
//
// k = n-1 for n = 10, otherwise the smallest odd integer >= 3·log2(n) (17 for 50, 21 for 100);
// t is the default strict majority of k+1. "dropout" is the fraction of sites that share keys
// and then never send their masked input, the costliest point to drop: the server must
// reconstruct their mask keys and regenerate their pairwise masks. Everything runs on one
// thread. prg_gbps is re-measured just before each configuration. Ends with one JSON object per
// configuration, one per line.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "fedattn/crypto/prg.h"
#include "fedattn/secagg/encoding.h"
#include "fedattn/secagg/simulation.h"

namespace {

using fedattn::secagg::SiteId;
using fedattn::secagg::Stage;

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Raw AES-128-CTR keystream speed, the way the masks use it: 64 KiB calls over zeros.
double MeasurePrgGbps() {
  std::array<uint8_t, 16> key{};
  key[0] = 1;
  auto prg = fedattn::crypto::Aes128CtrPrg::Create(key);
  if (!prg.ok()) return 0;
  std::vector<uint8_t> zeros(65536, 0), out(65536);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const double start = Now();
    uint64_t bytes = 0;
    while (Now() - start < 0.1) {
      for (int i = 0; i < 64; ++i) {
        if (!prg->Xor(zeros, out).ok()) return 0;
        bytes += zeros.size();
      }
    }
    best = std::max(best, bytes / (Now() - start) / 1e9);
  }
  return best;
}

uint32_t DegreeFor(uint32_t n) {
  if (n <= 10) return n - 1;
  uint32_t k = static_cast<uint32_t>(std::ceil(3 * std::log2(static_cast<double>(n))));
  return k % 2 == 1 ? k : k + 1;
}

struct Row {
  uint32_t n, k, t;
  uint64_t d;
  double dropout;
  fedattn::secagg::SimulationReport report;
  double encode_s;
  double prg_gbps;
};

int Run(uint32_t n, uint64_t d, double dropout, uint32_t k, double prg_gbps,
        std::vector<Row>& rows) {
  fedattn::secagg::SimulationOptions options;
  options.config.job_id = "bench";
  options.config.round = 1;
  for (uint32_t i = 0; i < n; ++i) options.config.sites.push_back(i);
  options.config.vector_length = d;
  options.config.degree = k;
  options.config.max_dropout_fraction = 0.1;
  options.seed = 42;
  const uint32_t drops = static_cast<uint32_t>(std::lround(dropout * n));
  for (uint32_t i = 0; i < drops; ++i) options.dropouts[(i * n) / std::max(drops, 1u)] = Stage::kMaskedInput;
  auto resolved = options.config.Resolved();
  if (!resolved.ok()) {
    std::fprintf(stderr, "config refused: %s\n", std::string(resolved.status().message()).c_str());
    return 1;
  }
  auto input = [](SiteId site, std::span<uint32_t> out) {
    return fedattn::secagg::FillTestInput(7, site, 1u << 20, out);
  };
  auto report = fedattn::secagg::RunSimulation(options, input);
  if (!report.ok()) {
    std::fprintf(stderr, "run failed: %s\n", std::string(report.status().message()).c_str());
    return 1;
  }
  // Encoding one client's float update (clip + stochastic rounding), timed apart.
  fedattn::secagg::EncodingOptions encoding;
  encoding.max_sites = n;
  auto encoder = fedattn::secagg::Encoder::Create(encoding);
  std::vector<float> x(d);
  for (uint64_t i = 0; i < d; ++i) x[i] = std::sin(0.001 * i);
  std::vector<uint32_t> q(d);
  fedattn::crypto::DeterministicRandom random(1);
  const double start = Now();
  if (!encoder->Encode(x, q, random).ok()) return 1;
  const double encode_s = Now() - start;
  rows.push_back(Row{n, resolved->degree, resolved->threshold, d, dropout, *std::move(report),
                     encode_s, prg_gbps});
  return 0;
}

void PrintRow(const Row& r) {
  const auto& rep = r.report;
  std::printf(
      "n=%3u d=%8llu k=%2u t=%2u drop=%.1f | client ms: %6.2f %6.2f %7.2f %5.2f = %7.2f (max "
      "%7.2f) | server ms: %6.2f %6.2f %7.2f %8.2f = %8.2f | client sent %9.3f MB recv %8.3f MB | "
      "encode %6.2f ms | AES-CTR %.2f GB/s\n",
      r.n, static_cast<unsigned long long>(r.d), r.k, r.t, r.dropout, 1e3 * rep.client_mean.stage[0],
      1e3 * rep.client_mean.stage[1], 1e3 * rep.client_mean.stage[2],
      1e3 * rep.client_mean.stage[3], 1e3 * rep.client_mean.total(), 1e3 * rep.client_max.total(),
      1e3 * rep.server.stage[0], 1e3 * rep.server.stage[1], 1e3 * rep.server.stage[2],
      1e3 * rep.server.stage[3], 1e3 * rep.server.total(), rep.client_sent_bytes_max / 1e6,
      rep.client_received_bytes_max / 1e6, 1e3 * r.encode_s, r.prg_gbps);
  std::fflush(stdout);
}

void PrintJson(const Row& r) {
  const auto& rep = r.report;
  const double prg = r.prg_gbps * 1e9;
  // What the PRG alone would take: a client expands at most k+1 masks of 4d bytes; the server
  // one per survivor plus one per (dropped site, surviving neighbour) pair.
  const double client_prg_s = (r.k + 1) * 4.0 * r.d / prg;
  const double server_prg_s = rep.result.regenerated_masks * 4.0 * r.d / prg;
  std::printf(
      "{\"n\": %u, \"d\": %llu, \"k\": %u, \"t\": %u, \"dropout\": %.2f, "
      "\"client_stage_s\": [%.6f, %.6f, %.6f, %.6f], \"client_total_s\": %.6f, "
      "\"client_max_total_s\": %.6f, \"server_stage_s\": [%.6f, %.6f, %.6f, %.6f], "
      "\"server_total_s\": %.6f, \"client_sent_bytes\": %llu, \"client_received_bytes\": %llu, "
      "\"client_encode_s\": %.6f, \"prg_gbps\": %.3f, \"client_mask_vs_prg\": %.3f, "
      "\"server_unmask_vs_prg\": %.3f, \"server_masks\": %llu}\n",
      r.n, static_cast<unsigned long long>(r.d), r.k, r.t, r.dropout, rep.client_mean.stage[0],
      rep.client_mean.stage[1], rep.client_mean.stage[2], rep.client_mean.stage[3],
      rep.client_mean.total(), rep.client_max.total(), rep.server.stage[0], rep.server.stage[1],
      rep.server.stage[2], rep.server.stage[3], rep.server.total(),
      static_cast<unsigned long long>(rep.client_sent_bytes_max),
      static_cast<unsigned long long>(rep.client_received_bytes_max), r.encode_s, r.prg_gbps,
      rep.client_mean.stage[2] / client_prg_s, rep.server.stage[3] / server_prg_s,
      static_cast<unsigned long long>(rep.result.regenerated_masks));
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<uint32_t> ns = {10, 50, 100};
  std::vector<uint64_t> ds = {100000, 1000000, 10000000};
  std::vector<double> dropouts = {0.0, 0.1};
  uint32_t forced_k = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick") {
      ns = {10, 100};
      ds = {100000, 1000000};
    } else if (arg.rfind("--n=", 0) == 0) {
      ns = {static_cast<uint32_t>(std::stoul(arg.substr(4)))};
    } else if (arg.rfind("--d=", 0) == 0) {
      ds = {std::stoull(arg.substr(4))};
    } else if (arg.rfind("--dropout=", 0) == 0) {
      dropouts = {std::stod(arg.substr(10))};
    } else if (arg.rfind("--k=", 0) == 0) {
      forced_k = static_cast<uint32_t>(std::stoul(arg.substr(4)));
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--n=N] [--d=D] [--dropout=F] [--k=K]\n", argv[0]);
      return 2;
    }
  }
  const double prg_gbps = MeasurePrgGbps();
  std::printf("raw AES-128-CTR keystream (EVP, 64 KiB calls, one core): %.2f GB/s\n", prg_gbps);
  std::printf("client stages: advertise, share-keys, masked-input, unmask (mean over clients)\n");
  std::vector<Row> rows;
  for (uint64_t d : ds) {
    for (uint32_t n : ns) {
      for (double dropout : dropouts) {
        // Re-measured per configuration: on a shared machine the speed drifts with the load.
        const double local_gbps = MeasurePrgGbps();
        if (Run(n, d, dropout, forced_k ? forced_k : DegreeFor(n), local_gbps, rows) != 0) return 1;
        PrintRow(rows.back());
      }
    }
  }
  for (const Row& row : rows) PrintJson(row);
  return 0;
}
