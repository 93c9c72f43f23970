// Line charts as inline SVG, rendered by the coordinator for its dashboard: no JavaScript, no
// external assets, so a page works offline and under a strict Content-Security-Policy.
//
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace fedattn::coordinator {

// Escapes & < > " ' for HTML text and attribute values (and SVG, which is XML).
std::string HtmlEscape(absl::string_view text);

struct ChartSeries {
  std::string name;                               // legend text (escaped by the renderer)
  std::vector<std::pair<double, double>> points;  // (x, y); non-finite y breaks the line
  bool dashed = false;                            // e.g. a privacy cap
  int color = -1;                                 // palette index; -1 = the series' position
};

struct LineChartOptions {
  std::string title;
  std::string x_label = "round";
  std::string y_label;
  int width = 560;   // pixels
  int height = 280;  // pixels
  bool integer_x = true;          // x ticks at whole numbers only (rounds)
  std::optional<double> y_min;    // fixed lower bound (e.g. 0 for scores); default: from the data
  std::optional<double> y_max;    // fixed upper bound (e.g. 1); default: from the data
  std::string empty_text = "no data yet";  // shown when no series has a finite point
};

// An <svg> element: axes with round-number ticks, one polyline (and point markers with <title>
// tooltips) per series in a colour-blind-safe palette, a legend. Every string is escaped.
std::string RenderLineChart(const LineChartOptions& options, const std::vector<ChartSeries>& series);

// Round-number ticks (multiples of 1, 2 or 5 times a power of ten), the first <= lo and the last
// >= hi, about `target` intervals apart.
// REQUIRES: lo <= hi, both finite.
std::vector<double> NiceTicks(double lo, double hi, int target = 5);

// The palette colour (hex, "#rrggbb") for a series index; cycles.
std::string ChartColor(int index);

}  // namespace fedattn::coordinator
