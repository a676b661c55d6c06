#include "text/written_forms.h"

#include <gtest/gtest.h>

#include "text/char_filter.h"
#include "text/number_reading.h"

namespace cosy::text {
namespace {

TEST(NumberReading, ChineseIntegers) {
  EXPECT_EQ(zh_integer("0"), "零");
  EXPECT_EQ(zh_integer("7"), "七");
  EXPECT_EQ(zh_integer("10"), "十");
  EXPECT_EQ(zh_integer("15"), "十五");
  EXPECT_EQ(zh_integer("22"), "二十二");
  EXPECT_EQ(zh_integer("110"), "一百一十");
  EXPECT_EQ(zh_integer("123"), "一百二十三");
  EXPECT_EQ(zh_integer("200"), "两百");
  EXPECT_EQ(zh_integer("1001"), "一千零一");
  EXPECT_EQ(zh_integer("1200"), "一千二百");
  EXPECT_EQ(zh_integer("2000"), "两千");
  EXPECT_EQ(zh_integer("20000"), "两万");
  EXPECT_EQ(zh_integer("100000"), "十万");
  EXPECT_EQ(zh_integer("100001"), "十万零一");
  EXPECT_EQ(zh_integer("101000"), "十万一千");
  EXPECT_EQ(zh_integer("100010"), "十万零一十");
  EXPECT_EQ(zh_integer("10010000"), "一千零一万");
  EXPECT_EQ(zh_integer("120000000"), "一亿两千万");
  EXPECT_EQ(zh_integer("100001000"), "一亿零一千");
  EXPECT_EQ(zh_integer("1000000000000"), "一万亿");
  EXPECT_EQ(zh_integer("007"), "零零七");  // leading zeros: digit by digit
  EXPECT_EQ(zh_integer("12345678901234567"), "一二三四五六七八九零一二三四五六七");  // > 16 digits
  EXPECT_EQ(zh_decimal("3", "14"), "三点一四");
  EXPECT_EQ(zh_decimal("0", "5"), "零点五");
  EXPECT_EQ(zh_digits("110", /*phone=*/true), "幺幺零");
}

TEST(NumberReading, EnglishNumbers) {
  EXPECT_EQ(en_cardinal("0"), "zero");
  EXPECT_EQ(en_cardinal("123"), "one hundred twenty-three");
  EXPECT_EQ(en_cardinal("1000000"), "one million");
  EXPECT_EQ(en_cardinal("0042"), "zero zero four two");
  EXPECT_EQ(en_cardinal("1234567890123456"), en_digits("1234567890123456"));  // > 15 digits
  EXPECT_EQ(en_ordinal("1"), "first");
  EXPECT_EQ(en_ordinal("22"), "twenty-second");
  EXPECT_EQ(en_year("1998"), "nineteen ninety-eight");
  EXPECT_EQ(en_year("2005"), "two thousand five");
  EXPECT_EQ(en_year("2024"), "twenty twenty-four");
  EXPECT_EQ(en_decimal("3", "14"), "three point one four");
  EXPECT_EQ(en_plural("ninety"), "nineties");
  EXPECT_EQ(en_plural("third"), "thirds");
}

// One case per Chinese rule, as docs/text-normalization.md lists them.
TEST(WrittenForms, Chinese) {
  const std::pair<const char*, const char*> cases[] = {
      {"共123个", "共一百二十三个"},
      {"1,234,567人", "一百二十三万四千五百六十七人"},
      {"圆周率3.14", "圆周率三点一四"},
      {"增长50%", "增长百分之五十"},
      {"下降3.5％", "下降百分之三点五"},
      {"10%-20%", "百分之十到百分之二十"},
      {"气温-5度", "气温负五度"},
      {"3/4的人", "四分之三的人"},
      {"3-5天", "三到五天"},
      {"3~5人", "三到五人"},
      {"2024-03-05出发", "二零二四年三月五日出发"},
      {"2024/3/5", "二零二四年三月五日"},
      {"2024年3月5日", "二零二四年三月五日"},
      {"10:30开会", "十点三十分开会"},
      {"9:05", "九点零五分"},
      {"2:00", "两点"},
      {"10:00:05", "十点零分零五秒"},
      {"比分3:2", "比分三比二"},
      {"电话13812345678", "电话幺三八幺二三四五六七八"},
      {"138-1234-5678", "幺三八幺二三四五六七八"},
      {"010-12345678", "零幺零幺二三四五六七八"},
      {"400-123-4567", "四零零幺二三四五六七"},
      {"+86 13812345678", "加八六 幺三八幺二三四五六七八"},
      {"¥100", "一百元"},
      {"￥99.5", "九十九点五元"},
      {"$5", "五美元"},
      {"€2.5万", "二点五万欧元"},
      {"£3", "三英镑"},
      {"5kg", "五千克"},
      {"3.5 km", "三点五千米"},
      {"60km/h", "六十千米每小时"},
      {"25℃", "二十五摄氏度"},
      {"25°C", "二十五摄氏度"},
      {"5m²", "五平方米"},
      {"30min", "三十分钟"},
      {"2个苹果", "两个苹果"},
      {"第2名", "第二名"},
      {"22个", "二十二个"},
      {"A4纸", "A四纸"},
      {"没有数字", "没有数字"},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(verbalize_chinese(in), want) << in;
}

// One case per English rule.
TEST(WrittenForms, English) {
  const std::pair<const char*, const char*> cases[] = {
      {"I have 42 cats", "I have forty-two cats"},
      {"about 1,234,567 people",
       "about one million two hundred thirty-four thousand five hundred sixty-seven people"},
      {"pi is 3.14", "pi is three point one four"},
      {"it is -5 outside", "it is minus five outside"},
      {"up 50%", "up fifty percent"},
      {"5-10 kg", "five to ten kilograms"},
      {"1 kg", "one kilogram"},
      {"2.5km", "two point five kilometers"},
      {"60 mph", "sixty miles per hour"},
      {"25°C", "twenty-five degrees Celsius"},
      {"16GB", "sixteen gigabytes"},
      {"the 1st and 22nd", "the first and twenty-second"},
      {"in 1998", "in nineteen ninety-eight"},
      {"since 2005", "since two thousand five"},
      {"from 1990-2000", "from nineteen ninety to two thousand"},
      {"the 1990s", "the nineteen nineties"},
      {"the 80s", "the eighties"},
      {"2024-03-05", "March fifth, twenty twenty-four"},
      {"03/05/2024", "March fifth, twenty twenty-four"},
      {"March 5, 2024", "March fifth, twenty twenty-four"},
      {"on Mar. 5", "on Mar. fifth"},
      {"at 10:30", "at ten thirty"},
      {"at 9:05 am", "at nine oh five a m"},
      {"at 7:00", "at seven o'clock"},
      {"at 7:00 p.m.", "at seven p m"},
      {"at 5pm", "at five p m"},
      {"call 555-123-4567", "call five five five, one two three, four five six seven"},
      {"(555) 123-4567", "five five five, one two three, four five six seven"},
      {"1-800-555-1234", "one, eight zero zero, five five five, one two three four"},
      {"$5", "five dollars"},
      {"$1", "one dollar"},
      {"$1.50", "one dollar and fifty cents"},
      {"$0.99", "ninety-nine cents"},
      {"$3.5 million", "three point five million dollars"},
      {"£2", "two pounds"},
      {"€10", "ten euros"},
      {"¥100", "one hundred yen"},
      {"1/2 cup", "one half cup"},
      {"3/4", "three quarters"},
      {"2/3", "two thirds"},
      {"mp3", "mp three"},
      {"no digits here", "no digits here"},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(verbalize_english(in), want) << in;
}

TEST(CharFilter, RemovesWhatCannotBeSpokenAndNarrowsFullWidth) {
  EXPECT_EQ(clean_characters("好的👍🏻！", true), "好的！");
  EXPECT_EQ(clean_characters("a\u200bb\u200dc\ufeff", false), "abc");    // zero-width, BOM
  EXPECT_EQ(clean_characters(std::string("a\0b\x07", 4), false), "ab");  // NUL, BEL
  EXPECT_EQ(clean_characters("a\tb\r\nc\rd", false), "a b\nc\nd");
  EXPECT_EQ(clean_characters("\ue000x", false), "x");   // private use
  EXPECT_EQ(clean_characters("🇨🇳中国", true), "中国");  // regional indicators
  EXPECT_EQ(clean_characters("１２３ＡＢ％，好！", true), "123AB%，好！");
  EXPECT_EQ(clean_characters("Ｈｉ！　ｙｏｕ？", false), "Hi! you?");
  EXPECT_EQ(clean_characters("#1 *", false), "#1 *");  // keycap bases stay
  EXPECT_EQ(clean_characters("ok 👍 go", false), "ok go");
  EXPECT_THROW(clean_characters("a\xff", false), std::exception);
}

// Linear in length, and safe on text that is nothing but number-like punctuation.
TEST(WrittenForms, LongAndDegenerateInputs) {
  std::string digits(1 << 20, '9');
  EXPECT_EQ(verbalize_chinese(digits).size(), digits.size() * 3);  // digit by digit
  EXPECT_FALSE(verbalize_english(digits).empty());
  std::string separators;
  for (int i = 0; i < 100000; ++i) separators += "1-/:.,%$";
  EXPECT_FALSE(verbalize_chinese(separators).empty());
  EXPECT_FALSE(verbalize_english(separators).empty());
  EXPECT_EQ(verbalize_english("-"), "-");
  EXPECT_EQ(verbalize_chinese("$"), "$");
}

}  // namespace
}  // namespace cosy::text
