// Target-module selection without a model (target_spec.h): PEFT's name rule, layers, and the
// regex form, matched by the non-backtracking matcher (Python's re.fullmatch semantics).
#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "adapters/target_spec.h"
#include "core/error.h"

namespace {

using peft::InputError;
using peft::adapters::regex_full_match;
using peft::adapters::TargetSpec;

const std::string q0 = "distilbert.transformer.layer.0.attention.q_lin";
const std::string lin2_1 = "distilbert.transformer.layer.1.ffn.lin2";
const std::string query11 = "bert.encoder.layer.11.attention.self.query";

TEST(TargetSpec, NamesMatchTheWholePathOrADottedSuffixInTheListedLayers) {
  auto s = TargetSpec::from_names({"q_lin", "ffn.lin2"}, {1});
  EXPECT_FALSE(s.matches(q0, 0));  // layer 0 is not listed
  EXPECT_TRUE(s.matches(lin2_1, 1));
  EXPECT_FALSE(TargetSpec::from_names({"lin2"}).matches("distilbert.transformer.layer.1.ffn.xlin2", 1));
  EXPECT_TRUE(TargetSpec::from_names({"query"}).matches(query11, 11));
  EXPECT_TRUE(TargetSpec::all_linear().matches(q0, 0));
}

TEST(TargetSpec, RegexIsAFullMatch) {
  EXPECT_TRUE(TargetSpec::from_regex(R"(.*\.layer\.1\..*(q_lin|lin2))").matches(lin2_1, 1));
  EXPECT_FALSE(TargetSpec::from_regex("q_lin").matches(q0, 0));
  EXPECT_TRUE(TargetSpec::from_regex(R"(^bert\.encoder\.layer\.(?:1[01]|[0-9])\.attention\.self\.(query|value)$)").matches(query11, 11));
  EXPECT_TRUE(regex_full_match(R"([\w.]*\d+\.(attention\.)?[^.]*_lin{1,2})", q0));
  EXPECT_TRUE(regex_full_match("a{,2}b?", "aa"));
  EXPECT_FALSE(regex_full_match("a{,2}b?", "aaa"));
  EXPECT_TRUE(regex_full_match("x{2}", "xx"));
  EXPECT_TRUE(regex_full_match(R"(\{)", "{"));
  EXPECT_TRUE(regex_full_match("[]a]+", "]a"));  // Python: a leading ] is a member
}

TEST(TargetSpec, PathologicalPatternsRunInLinearTime) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string long_path(2000, 'a');
  EXPECT_FALSE(regex_full_match("(a*)*b", long_path));  // exponential for a backtracking matcher
  EXPECT_FALSE(regex_full_match("(.*)*x", q0 + q0 + q0));
  EXPECT_TRUE(regex_full_match("(a|aa)*", long_path));
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
}

TEST(TargetSpec, UnsupportedOrOversizedPatternsAreRefusedByName) {
  auto message = [](const std::string& pattern) {
    try {
      TargetSpec::from_regex(pattern).validate();
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_NE(message("(unclosed").find("missing )"), std::string::npos);
  EXPECT_NE(message("a)").find("unbalanced parenthesis"), std::string::npos);
  EXPECT_NE(message(R"((a)\1)").find("back-references are not supported"), std::string::npos);
  EXPECT_NE(message("(?=q)q_lin").find("(?:...)"), std::string::npos);
  EXPECT_NE(message(R"(\bq_lin)").find("\\b is not supported"), std::string::npos);
  EXPECT_NE(message("a**").find("multiple repeat"), std::string::npos);
  EXPECT_NE(message("*a").find("nothing to repeat"), std::string::npos);
  EXPECT_NE(message("[z-a]").find("bad character range"), std::string::npos);
  EXPECT_NE(message(std::string(70, '(') + std::string(70, ')')).find("nested deeper than 64"), std::string::npos);
  EXPECT_NE(message(std::string(2000, 'a')).find("longer than 1024 characters"), std::string::npos);
  EXPECT_NE(message("((a{1000}){1000})").find("expands to more than 20000 steps"), std::string::npos);
  EXPECT_NE(message("(){1000}(){1000}((){1000}){1000}").find("expands to more than"), std::string::npos);
  EXPECT_NE(message("a{1001}").find("repeat count above 1000"), std::string::npos);
  EXPECT_NE(message("(a").find("target modules: invalid regex \"(a\""), std::string::npos);
}

}  // namespace
