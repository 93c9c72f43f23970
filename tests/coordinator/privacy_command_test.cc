#include "privacy_command.h"

#include <sstream>

#include "fedattn/dp/accountant.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace fedattn::cli {
namespace {

PrivacyArgs MnistArgs() {
  PrivacyArgs args;
  args.sampling_rate = "0.004266666666666667";  // 256 / 60000
  args.noise_multiplier = "1.1";
  args.steps = "14063";
  args.delta = "1e-5";
  return args;
}

TEST(PrivacyCommandTest, EpsilonText) {
  auto out = RunPrivacyQuery(PrivacyQuery::kEpsilon, MnistArgs());
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_NE(out->find("epsilon = 2.59666 at delta = 1e-05"), std::string::npos) << *out;
  EXPECT_NE(out->find("optimal RDP order 8.1 on the default grid"), std::string::npos) << *out;
}

TEST(PrivacyCommandTest, EpsilonJson) {
  PrivacyArgs args = MnistArgs();
  args.json = true;
  auto out = RunPrivacyQuery(PrivacyQuery::kEpsilon, args);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->back(), '\n');
  EXPECT_EQ(out->find('\n'), out->size() - 1);  // one line
  const auto j = nlohmann::json::parse(*out);
  EXPECT_NEAR(j.at("epsilon").get<double>(), 2.596655528680917, 1e-8);
  EXPECT_EQ(j.at("delta").get<double>(), 1e-5);
  EXPECT_EQ(j.at("optimal_order").get<double>(), 1.0 + 71 / 10.0);
  EXPECT_EQ(j.at("orders").get<std::vector<double>>(), dp::DefaultRdpOrders());
  EXPECT_EQ(j.at("steps").get<int64_t>(), 14063);
}

TEST(PrivacyCommandTest, DeltaInvertsEpsilon) {
  PrivacyArgs args = MnistArgs();
  args.json = true;
  args.delta.clear();
  args.epsilon = "2.596655528680917";
  auto out = RunPrivacyQuery(PrivacyQuery::kDelta, args);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_NEAR(nlohmann::json::parse(*out).at("delta").get<double>(), 1e-5, 1e-12);
}

TEST(PrivacyCommandTest, NoiseCalibrationJson) {
  PrivacyArgs args = MnistArgs();
  args.noise_multiplier.clear();
  args.epsilon = "2.6";
  args.json = true;
  auto out = RunPrivacyQuery(PrivacyQuery::kNoise, args);
  ASSERT_TRUE(out.ok()) << out.status();
  const auto j = nlohmann::json::parse(*out);
  EXPECT_GT(j.at("noise_multiplier").get<double>(), 1.09);
  EXPECT_LT(j.at("noise_multiplier").get<double>(), 1.1);
  EXPECT_LE(j.at("epsilon").get<double>(), 2.6);
  EXPECT_TRUE(j.contains("optimal_order"));
  EXPECT_TRUE(j.contains("orders"));
}

TEST(PrivacyCommandTest, CustomOrders) {
  PrivacyArgs args = MnistArgs();
  args.orders = "2, 4,8,16";
  auto out = RunPrivacyQuery(PrivacyQuery::kEpsilon, args);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_NE(out->find("a grid of 4 orders from 2 to 16"), std::string::npos) << *out;
}

TEST(PrivacyCommandTest, InfeasibleTargetIsReported) {
  PrivacyArgs args = MnistArgs();
  args.noise_multiplier.clear();
  args.epsilon = "0.001";
  auto out = RunPrivacyQuery(PrivacyQuery::kNoise, args);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_NE(out.status().message().find("infeasible"), absl::string_view::npos);
}

struct BadValue {
  const char* field;
  const char* value;
  const char* flag_in_message;
};

class PrivacyCommandBadValueTest : public ::testing::TestWithParam<BadValue> {};

TEST_P(PrivacyCommandBadValueTest, ErrorNamesTheFlag) {
  const BadValue& bad = GetParam();
  PrivacyArgs args = MnistArgs();
  const std::string field = bad.field;
  if (field == "q") args.sampling_rate = bad.value;
  if (field == "sigma") args.noise_multiplier = bad.value;
  if (field == "steps") args.steps = bad.value;
  if (field == "delta") args.delta = bad.value;
  if (field == "orders") args.orders = bad.value;
  auto out = RunPrivacyQuery(PrivacyQuery::kEpsilon, args);
  ASSERT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << field << "=" << bad.value;
  EXPECT_NE(out.status().message().find(bad.flag_in_message), absl::string_view::npos)
      << out.status();
}

INSTANTIATE_TEST_SUITE_P(
    Flags, PrivacyCommandBadValueTest,
    ::testing::Values(BadValue{"q", "0", "--sampling-rate"}, BadValue{"q", "1.5", "--sampling-rate"},
                      BadValue{"q", "-0.1", "--sampling-rate"},
                      BadValue{"q", "abc", "--sampling-rate"},
                      BadValue{"sigma", "0", "--noise-multiplier"},
                      BadValue{"sigma", "-1", "--noise-multiplier"},
                      BadValue{"sigma", "nan", "--noise-multiplier"},
                      BadValue{"steps", "1.5", "--steps"}, BadValue{"steps", "0", "--steps"},
                      BadValue{"steps", "ten", "--steps"}, BadValue{"delta", "1", "--delta"},
                      BadValue{"delta", "0", "--delta"}, BadValue{"delta", "2", "--delta"},
                      BadValue{"delta", "", "--delta"}, BadValue{"orders", "2,x", "--orders"},
                      BadValue{"orders", "0.5,2", "--orders"},
                      BadValue{"orders", "2,2", "--orders"}, BadValue{"orders", "2,,3", "--orders"}));

TEST(PrivacyCommandTest, ParsesThroughCli11) {
  std::ostringstream out;
  std::ostringstream err;
  CLI::App app("test", "fedattn");
  AddPrivacyCommand(app, out, err);
  app.parse(
      "privacy noise --sampling-rate 0.01 --steps 1e4 --delta 1e-5 --target-epsilon 3 --json",
      false);
  const auto j = nlohmann::json::parse(out.str());
  EXPECT_LE(j.at("epsilon").get<double>(), 3.0);
  EXPECT_GT(j.at("noise_multiplier").get<double>(), 0.5);
  EXPECT_TRUE(err.str().empty());
}

TEST(PrivacyCommandTest, Cli11ErrorsExitNonZeroWithMessage) {
  std::ostringstream out;
  std::ostringstream err;
  CLI::App app("test", "fedattn");
  AddPrivacyCommand(app, out, err);
  try {
    app.parse("privacy epsilon --sampling-rate 2 --noise-multiplier 1 --steps 10 --delta 1e-5",
              false);
    FAIL() << "expected an error";
  } catch (const CLI::RuntimeError& e) {
    EXPECT_EQ(e.get_exit_code(), 1);
  }
  EXPECT_NE(err.str().find("fedattn privacy epsilon: --sampling-rate: '2' must be in (0, 1]"),
            std::string::npos)
      << err.str();
  CLI::App missing("test", "fedattn");
  AddPrivacyCommand(missing, out, err);
  EXPECT_THROW(missing.parse("privacy epsilon --sampling-rate 0.1 --steps 10", false),
               CLI::RequiredError);
}

}  // namespace
}  // namespace fedattn::cli
