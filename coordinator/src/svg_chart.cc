#include "fedattn/coordinator/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace fedattn::coordinator {
namespace {

// Okabe & Ito (2008), "Color Universal Design": distinguishable with the common colour-vision
// deficiencies.
constexpr const char* kPalette[] = {"#0072B2", "#E69F00", "#009E73", "#CC79A7",
                                    "#D55E00", "#56B4E9", "#F0E442", "#000000"};
constexpr int kLeft = 58, kRight = 16, kTitle = 22, kLegendRow = 18, kBottom = 40;

std::string Number(double value) {
  if (value == 0) return "0";
  return absl::StrFormat("%.4g", value);
}

std::string Coord(double value) { return absl::StrFormat("%.1f", value); }

}  // namespace

std::string HtmlEscape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string ChartColor(int index) {
  constexpr int n = static_cast<int>(std::size(kPalette));
  return kPalette[((index % n) + n) % n];
}

std::vector<double> NiceTicks(double lo, double hi, int target) {
  target = std::max(2, target);
  if (hi <= lo) return {lo};
  const double raw = (hi - lo) / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  // The 1-2-5 step whose tick count comes closest to the target.
  double step = magnitude;
  double best = std::numeric_limits<double>::infinity();
  for (double factor : {1.0, 2.0, 5.0, 10.0}) {
    const double candidate = factor * magnitude;
    const double miss = std::abs((hi - lo) / candidate - target);
    if (miss < best) {
      best = miss;
      step = candidate;
    }
  }
  const int64_t first = static_cast<int64_t>(std::floor(lo / step + 1e-9));
  const int64_t last = static_cast<int64_t>(std::ceil(hi / step - 1e-9));
  std::vector<double> ticks;
  for (int64_t k = first; k <= last; ++k) ticks.push_back(static_cast<double>(k) * step);
  return ticks;
}

std::string RenderLineChart(const LineChartOptions& options, const std::vector<ChartSeries>& series) {
  const int width = std::max(200, options.width);
  const int height = std::max(120, options.height);

  // Legend entries flow left to right, wrapping; their rows push the plot down.
  struct LegendItem {
    int x, row;
  };
  std::vector<LegendItem> legend;
  int row = 0, x = kLeft;
  for (const ChartSeries& s : series) {
    const int item_width = 30 + 7 * static_cast<int>(s.name.size());
    if (x + item_width > width - kRight && x > kLeft) {
      ++row;
      x = kLeft;
    }
    legend.push_back({x, row});
    x += item_width + 12;
  }
  const int legend_rows = series.empty() ? 0 : row + 1;
  const int top = kTitle + 6 + legend_rows * kLegendRow;
  const int plot_w = width - kLeft - kRight;
  const int plot_h = std::max(40, height - top - kBottom);

  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo;
  double y_lo = x_lo, y_hi = -x_lo;
  for (const ChartSeries& s : series) {
    for (const auto& [px, py] : s.points) {
      if (!std::isfinite(px) || !std::isfinite(py)) continue;
      x_lo = std::min(x_lo, px);
      x_hi = std::max(x_hi, px);
      y_lo = std::min(y_lo, py);
      y_hi = std::max(y_hi, py);
    }
  }
  const bool empty = !std::isfinite(x_lo);

  std::string out = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
      "role=\"img\" aria-label=\"%s\">\n",
      width, height, width, height, HtmlEscape(options.title));
  absl::StrAppend(&out, "<rect x=\"0\" y=\"0\" width=\"", width, "\" height=\"", height, "\" fill=\"#ffffff\"/>\n");
  absl::StrAppend(&out, "<text x=\"", kLeft, "\" y=\"16\" font-size=\"14\" font-weight=\"bold\">",
                  HtmlEscape(options.title), "</text>\n");
  for (size_t i = 0; i < series.size(); ++i) {
    const ChartSeries& s = series[i];
    const std::string color = ChartColor(s.color >= 0 ? s.color : static_cast<int>(i));
    const int ly = kTitle + 6 + legend[i].row * kLegendRow + 9;
    absl::StrAppend(&out, "<line x1=\"", legend[i].x, "\" y1=\"", ly, "\" x2=\"", legend[i].x + 22, "\" y2=\"", ly,
                    "\" stroke=\"", color, "\" stroke-width=\"2.5\"", s.dashed ? " stroke-dasharray=\"6 4\"" : "",
                    "/>\n");
    absl::StrAppend(&out, "<text x=\"", legend[i].x + 27, "\" y=\"", ly + 4, "\" font-size=\"12\">",
                    HtmlEscape(s.name), "</text>\n");
  }
  // Plot frame.
  absl::StrAppend(&out, "<rect x=\"", kLeft, "\" y=\"", top, "\" width=\"", plot_w, "\" height=\"", plot_h,
                  "\" fill=\"none\" stroke=\"#888888\"/>\n");
  if (empty) {
    absl::StrAppend(&out, "<text x=\"", kLeft + plot_w / 2, "\" y=\"", top + plot_h / 2,
                    "\" font-size=\"13\" fill=\"#666666\" text-anchor=\"middle\">", HtmlEscape(options.empty_text),
                    "</text>\n</svg>\n");
    return out;
  }

  if (options.y_min) y_lo = std::min(y_lo, *options.y_min);
  if (options.y_max) y_hi = std::max(y_hi, *options.y_max);
  if (y_hi - y_lo < 1e-12) {  // a flat line: give it some room
    const double pad = std::max(std::abs(y_hi) * 0.1, 1e-3);
    y_lo -= pad;
    y_hi += pad;
  }
  if (x_hi - x_lo < 1e-12) {
    x_lo -= 1;
    x_hi += 1;
  }
  // The axis ends on ticks unless a bound is fixed.
  const std::vector<double> y_ticks = NiceTicks(y_lo, y_hi, 5);
  if (!options.y_min) y_lo = y_ticks.front();
  if (!options.y_max) y_hi = y_ticks.back();
  std::vector<double> x_ticks = NiceTicks(x_lo, x_hi, std::min(8, std::max(2, plot_w / 60)));
  if (options.integer_x) {
    std::vector<double> whole;
    for (double tick : x_ticks) {
      if (std::abs(tick - std::round(tick)) < 1e-9 && (whole.empty() || std::round(tick) != whole.back())) {
        whole.push_back(std::round(tick));
      }
    }
    x_ticks = whole;
  }

  auto sx = [&](double v) { return kLeft + (v - x_lo) / (x_hi - x_lo) * plot_w; };
  auto sy = [&](double v) { return top + plot_h - (v - y_lo) / (y_hi - y_lo) * plot_h; };

  for (double tick : y_ticks) {
    if (tick < y_lo - 1e-12 || tick > y_hi + 1e-12) continue;
    const std::string y = Coord(sy(tick));
    absl::StrAppend(&out, "<line x1=\"", kLeft, "\" y1=\"", y, "\" x2=\"", kLeft + plot_w, "\" y2=\"", y,
                    "\" stroke=\"#e4e4e4\"/>\n");
    absl::StrAppend(&out, "<text x=\"", kLeft - 6, "\" y=\"", Coord(sy(tick) + 4),
                    "\" font-size=\"11\" text-anchor=\"end\">", Number(tick), "</text>\n");
  }
  for (double tick : x_ticks) {
    if (tick < x_lo - 1e-12 || tick > x_hi + 1e-12) continue;
    const std::string xs = Coord(sx(tick));
    absl::StrAppend(&out, "<line x1=\"", xs, "\" y1=\"", top + plot_h, "\" x2=\"", xs, "\" y2=\"", top + plot_h + 4,
                    "\" stroke=\"#888888\"/>\n");
    absl::StrAppend(&out, "<text x=\"", xs, "\" y=\"", top + plot_h + 17, "\" font-size=\"11\" text-anchor=\"middle\">",
                    Number(tick), "</text>\n");
  }
  absl::StrAppend(&out, "<text x=\"", kLeft + plot_w / 2, "\" y=\"", height - 6,
                  "\" font-size=\"12\" text-anchor=\"middle\">", HtmlEscape(options.x_label), "</text>\n");
  if (!options.y_label.empty()) {
    absl::StrAppend(&out, "<text x=\"14\" y=\"", top + plot_h / 2, "\" font-size=\"12\" text-anchor=\"middle\" ",
                    "transform=\"rotate(-90 14 ", top + plot_h / 2, ")\">", HtmlEscape(options.y_label), "</text>\n");
  }

  for (size_t i = 0; i < series.size(); ++i) {
    const ChartSeries& s = series[i];
    const std::string color = ChartColor(s.color >= 0 ? s.color : static_cast<int>(i));
    // Runs of finite points become polylines.
    std::vector<std::vector<std::pair<double, double>>> runs(1);
    for (const auto& point : s.points) {
      if (std::isfinite(point.first) && std::isfinite(point.second)) {
        runs.back().push_back(point);
      } else if (!runs.back().empty()) {
        runs.emplace_back();
      }
    }
    for (const auto& run : runs) {
      if (run.size() < 2) continue;
      std::string points;
      for (const auto& [px, py] : run) absl::StrAppend(&points, points.empty() ? "" : " ", Coord(sx(px)), ",", Coord(sy(py)));
      absl::StrAppend(&out, "<polyline fill=\"none\" stroke=\"", color, "\" stroke-width=\"2\"",
                      s.dashed ? " stroke-dasharray=\"6 4\"" : "", " points=\"", points, "\"/>\n");
    }
    if (s.dashed) continue;  // reference lines (caps) carry no markers
    for (const auto& [px, py] : s.points) {
      if (!std::isfinite(px) || !std::isfinite(py)) continue;
      absl::StrAppend(&out, "<circle cx=\"", Coord(sx(px)), "\" cy=\"", Coord(sy(py)), "\" r=\"3\" fill=\"", color,
                      "\"><title>", HtmlEscape(s.name), ": ", HtmlEscape(options.x_label), " ", Number(px), ", ",
                      Number(py), "</title></circle>\n");
    }
  }
  out += "</svg>\n";
  return out;
}

}  // namespace fedattn::coordinator
