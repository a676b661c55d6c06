#include "tools/loadtest/svg_chart.h"

#include <gtest/gtest.h>

namespace cosy::loadtest {
namespace {

TEST(SvgChart, NiceTicksCoverTheRangeInRoundSteps) {
  const std::vector<double> tenths = nice_ticks(0, 1);
  const std::vector<double> want = {0, 0.2, 0.4, 0.6, 0.8, 1.0};
  ASSERT_EQ(tenths.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(tenths[i], want[i], 1e-12);
  EXPECT_EQ(nice_ticks(0, 37), (std::vector<double>{0, 10, 20, 30, 40}));
  EXPECT_EQ(nice_ticks(0, 0).front(), 0);
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

TEST(SvgChart, OnePolylinePerSeriesAndEscapedText) {
  const std::string svg = svg_chart(
      "a <chart> & more", {{"left",
                            "x",
                            "y",
                            {{"one", {{1, 2}, {2, 3}, {4, 1}}}, {"two", {{1, 1}, {2, 2}}, true}},
                            true},
                           {"right", "x", "y", {{"three", {{1, 5}}}}}});
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_EQ(count(svg, "<polyline"), 3u);
  EXPECT_EQ(count(svg, "<circle"), 6u);
  EXPECT_EQ(count(svg, "stroke-dasharray"), 1u);
  EXPECT_NE(svg.find("a &lt;chart&gt; &amp; more"), std::string::npos);
  EXPECT_EQ(svg.find("<chart>"), std::string::npos);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
}

}  // namespace
}  // namespace cosy::loadtest
