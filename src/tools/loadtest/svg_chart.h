// Line charts as SVG, written directly: panels side by side, each with its axes, ticks,
// series and legend. Enough for a sweep (first audio and xRT against concurrency, a fleet
// size against per-card capacity); an image any browser or Perfetto-style viewer shows.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace cosy::loadtest {

struct ChartSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in order
  bool dashed = false;
};

struct ChartPanel {
  std::string title, x_label, y_label;
  std::vector<ChartSeries> series;
  bool log2_x = false;  // concurrency 1, 2, 4, 8, 16 evenly spaced
};

std::string svg_chart(const std::string& title, const std::vector<ChartPanel>& panels);

// Tick positions covering [lo, hi] at a 1, 2 or 5 × 10^k step, about `target` of them.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

}  // namespace cosy::loadtest
