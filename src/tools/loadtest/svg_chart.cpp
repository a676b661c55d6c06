#include "tools/loadtest/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>

namespace cosy::loadtest {
namespace {

constexpr double kPanelW = 460, kPanelH = 330, kLeft = 64, kRight = 16, kTop = 56, kBottom = 48;
constexpr const char* kColours[] = {"#1f77b4", "#d62728", "#2ca02c",
                                    "#ff7f0e", "#9467bd", "#8c564b"};

std::string escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string label(double v) {
  char buf[32];
  if (v != 0 && (std::fabs(v) >= 1e5 || std::fabs(v) < 1e-3)) {
    std::snprintf(buf, sizeof buf, "%.0e", v);
  } else {
    std::snprintf(buf, sizeof buf, "%g", v);
  }
  return buf;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) hi = lo + 1;
  const double raw = (hi - lo) / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (const double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  std::vector<double> ticks;
  const auto first = static_cast<int64_t>(std::floor(lo / step + 1e-9));
  const auto last = static_cast<int64_t>(std::ceil(hi / step - 1e-9));
  for (int64_t k = first; k <= last; ++k) ticks.push_back(static_cast<double>(k) * step);
  return ticks;
}

std::string svg_chart(const std::string& title, const std::vector<ChartPanel>& panels) {
  const double width = kPanelW * static_cast<double>(std::max<size_t>(1, panels.size()));
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(width) +
                    "\" height=\"" + num(kPanelH + 24) +
                    "\" font-family=\"sans-serif\" "
                    "font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"" + num(width / 2) + "\" y=\"18\" text-anchor=\"middle\" font-size=\"15\">" +
         escape(title) + "</text>\n";
  for (size_t p = 0; p < panels.size(); ++p) {
    const ChartPanel& panel = panels[p];
    const double x0 = kPanelW * static_cast<double>(p) + kLeft, x1 = kPanelW * (p + 1.0) - kRight;
    const double y0 = kPanelH - kBottom + 24, y1 = kTop;
    auto fx = [&](double x) { return panel.log2_x ? std::log2(std::max(x, 1e-9)) : x; };
    double xmin = std::numeric_limits<double>::max(), xmax = -xmin, ymax = 0, ymin = 0;
    for (const auto& s : panel.series) {
      for (const auto& [x, y] : s.points) {
        xmin = std::min(xmin, fx(x));
        xmax = std::max(xmax, fx(x));
        ymax = std::max(ymax, y);
        ymin = std::min(ymin, y);
      }
    }
    if (xmin > xmax) xmin = 0, xmax = 1;
    if (xmax == xmin) xmin -= 0.5, xmax += 0.5;
    const std::vector<double> yt = nice_ticks(ymin, ymax > ymin ? ymax : ymin + 1);
    const double ylo = yt.front(), yhi = yt.back();
    auto px = [&](double x) { return x0 + (fx(x) - xmin) / (xmax - xmin) * (x1 - x0); };
    auto py = [&](double y) { return y0 - (y - ylo) / (yhi - ylo) * (y0 - y1); };
    svg += "<text x=\"" + num((x0 + x1) / 2) + "\" y=\"" + num(y1 - 12) +
           "\" text-anchor=\"middle\" font-size=\"13\">" + escape(panel.title) + "</text>\n";
    for (const double t : yt) {
      svg += "<line x1=\"" + num(x0) + "\" x2=\"" + num(x1) + "\" y1=\"" + num(py(t)) + "\" y2=\"" +
             num(py(t)) + "\" stroke=\"#ddd\"/>\n<text x=\"" + num(x0 - 6) + "\" y=\"" +
             num(py(t) + 4) + "\" text-anchor=\"end\">" + label(t) + "</text>\n";
    }
    // x ticks: the data's own x values (concurrency levels), at most 12 of them.
    std::vector<double> xs;
    for (const auto& s : panel.series)
      for (const auto& pt : s.points) xs.push_back(pt.first);
    std::sort(xs.begin(), xs.end());
    xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
    if (xs.size() > 12) {
      xs = nice_ticks(xs.front(), xs.back());
      if (panel.log2_x) xs.clear();
    }
    for (const double t : xs) {
      svg += "<text x=\"" + num(px(t)) + "\" y=\"" + num(y0 + 16) + "\" text-anchor=\"middle\">" +
             label(t) + "</text>\n";
    }
    svg += "<line x1=\"" + num(x0) + "\" x2=\"" + num(x1) + "\" y1=\"" + num(y0) + "\" y2=\"" +
           num(y0) + "\" stroke=\"black\"/>\n<line x1=\"" + num(x0) + "\" x2=\"" + num(x0) +
           "\" y1=\"" + num(y0) + "\" y2=\"" + num(y1) + "\" stroke=\"black\"/>\n";
    svg += "<text x=\"" + num((x0 + x1) / 2) + "\" y=\"" + num(y0 + 34) +
           "\" text-anchor=\"middle\">" + escape(panel.x_label) + "</text>\n";
    svg += "<text transform=\"translate(" + num(x0 - 46) + "," + num((y0 + y1) / 2) +
           ") rotate(-90)\" text-anchor=\"middle\">" + escape(panel.y_label) + "</text>\n";
    for (size_t i = 0; i < panel.series.size(); ++i) {
      const ChartSeries& s = panel.series[i];
      const char* colour = kColours[i % std::size(kColours)];
      std::string points;
      for (const auto& [x, y] : s.points) points += num(px(x)) + "," + num(py(y)) + " ";
      svg += std::string("<polyline fill=\"none\" stroke=\"") + colour + "\" stroke-width=\"2\"" +
             (s.dashed ? " stroke-dasharray=\"6,4\"" : "") + " points=\"" + points + "\"/>\n";
      for (const auto& [x, y] : s.points) {
        svg += std::string("<circle r=\"3\" fill=\"") + colour + "\" cx=\"" + num(px(x)) +
               "\" cy=\"" + num(py(y)) + "\"/>\n";
      }
      const double ly = y1 + 14 + 16 * static_cast<double>(i);
      svg += std::string("<line x1=\"") + num(x0 + 10) + "\" x2=\"" + num(x0 + 30) + "\" y1=\"" +
             num(ly - 4) + "\" y2=\"" + num(ly - 4) + "\" stroke=\"" + colour +
             "\" stroke-width=\"2\"/>\n<text x=\"" + num(x0 + 36) + "\" y=\"" + num(ly) + "\">" +
             escape(s.name) + "</text>\n";
    }
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace cosy::loadtest
