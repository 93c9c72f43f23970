#include "fedattn/audit/canonical_json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace fedattn::audit {
namespace {

using nlohmann::json;

// Number serialisations from RFC 8785 Appendix B and ECMA-262's Number::toString.
TEST(FormatJsonNumberTest, MatchesEcmaScript) {
  EXPECT_EQ(FormatJsonNumber(0.0), "0");
  EXPECT_EQ(FormatJsonNumber(-0.0), "0");
  EXPECT_EQ(FormatJsonNumber(1.0), "1");
  EXPECT_EQ(FormatJsonNumber(-1.5), "-1.5");
  EXPECT_EQ(FormatJsonNumber(1e21), "1e+21");
  EXPECT_EQ(FormatJsonNumber(1e20), "100000000000000000000");
  EXPECT_EQ(FormatJsonNumber(1e-7), "1e-7");
  EXPECT_EQ(FormatJsonNumber(1e-6), "0.000001");
  EXPECT_EQ(FormatJsonNumber(1e-5), "0.00001");
  EXPECT_EQ(FormatJsonNumber(123.456), "123.456");
  EXPECT_EQ(FormatJsonNumber(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(FormatJsonNumber(333333333.33333329), "333333333.3333333");
  EXPECT_EQ(FormatJsonNumber(9007199254740992.0), "9007199254740992");
  EXPECT_EQ(FormatJsonNumber(std::numeric_limits<double>::max()), "1.7976931348623157e+308");
  EXPECT_EQ(FormatJsonNumber(std::numeric_limits<double>::denorm_min()), "5e-324");
  EXPECT_EQ(FormatJsonNumber(-1.2345e-10), "-1.2345e-10");
}

TEST(FormatJsonNumberTest, RoundTripsThroughParsing) {
  for (double value : {0.123456789012345678, 6.02214076e23, 1.0 / 3.0, 2.220446049250313e-16, 4.35}) {
    EXPECT_EQ(std::stod(FormatJsonNumber(value)), value) << value;
  }
}

TEST(CanonicalJsonTest, SortsKeysAndDropsWhitespace) {
  const json value = json::parse(R"({ "b" : [1, 2.50, true, null], "a" : {"z": "x", "y": -0.0} })");
  EXPECT_EQ(*CanonicalJson(value), R"({"a":{"y":0,"z":"x"},"b":[1,2.5,true,null]})");
}

TEST(CanonicalJsonTest, SortsKeysByUtf16CodeUnits) {
  // U+1F600 (surrogates D83D DE00) sorts before U+FB33 in UTF-16, after it in UTF-8.
  const json value = {{"\xEF\xAC\xB3", 1}, {"\xF0\x9F\x98\x80", 2}};
  EXPECT_EQ(*CanonicalJson(value), "{\"\xF0\x9F\x98\x80\":2,\"\xEF\xAC\xB3\":1}");
}

TEST(CanonicalJsonTest, EscapesOnlyWhatItMust) {
  const json value = std::string("q\"b\\n\n\t\x01/é");
  EXPECT_EQ(*CanonicalJson(value), "\"q\\\"b\\\\n\\n\\t\\u0001/é\"");
}

TEST(CanonicalJsonTest, RefusesWhatHasNoCanonicalForm) {
  EXPECT_FALSE(CanonicalJson(json(std::nan(""))).ok());
  EXPECT_FALSE(CanonicalJson(json(std::numeric_limits<double>::infinity())).ok());
  EXPECT_FALSE(CanonicalJson(json(int64_t{1} << 60)).ok());
  EXPECT_FALSE(CanonicalJson(json(std::string("\xC0\xAF"))).ok());  // overlong '/'
  EXPECT_FALSE(CanonicalJson(json(std::string("\xED\xA0\x80"))).ok());  // a surrogate
}

TEST(ParseCanonicalJsonTest, AcceptsOnlyCanonicalText) {
  EXPECT_TRUE(ParseCanonicalJson(R"({"a":1,"b":"x"})").ok());
  const auto spaced = ParseCanonicalJson(R"({"a": 1,"b":"x"})");
  ASSERT_FALSE(spaced.ok());
  EXPECT_NE(spaced.status().message().find("byte 5"), std::string::npos) << spaced.status();
  EXPECT_FALSE(ParseCanonicalJson(R"({"b":"x","a":1})").ok());
  EXPECT_FALSE(ParseCanonicalJson(R"({"a":1.0})").ok());
  EXPECT_FALSE(ParseCanonicalJson(R"({"a":1)").ok());
}

}  // namespace
}  // namespace fedattn::audit
