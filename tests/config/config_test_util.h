#pragma once
// Helpers for the sweep-file tests: a small valid sweep to vary, and the error text a
// variant produces.
#include <string>

#include <gtest/gtest.h>

#include "config/sweep_spec.h"
#include "core/error.h"

namespace peft::testing {

/// A valid sweep; line numbers matter to the tests that use it (line 1 is "[sweep]").
inline std::string base_sweep() {
  return "[sweep]\n"                             // 1
         "name = \"t\"\n"                        // 2
         "dp = 2\n"                              // 3
         "[model]\n"                             // 4
         "preset = \"tiny\"\n"                   // 5
         "[train]\n"                             // 6
         "batch_size = 8\n"                      // 7
         "lr = 0.001\n"                          // 8
         "[grid]\n"                              // 9
         "method = [\"lora\", \"head\"]\n"       // 10
         "dataset = \"synthetic_sentiment\"\n";  // 11
}

/// The message of the peft::InputError parsing `text` throws, or a test failure.
inline std::string parse_error(const std::string& text, bool check_paths = true) {
  try {
    parse_sweep_string(text, "x.toml", check_paths);
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for:\n" << text;
  return {};
}

/// gtest assertion: `text` contains `needle`.
inline ::testing::AssertionResult contains(const std::string& text, const std::string& needle) {
  if (text.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\n  \"" << text << "\"\ndoes not contain\n  \"" << needle << "\"";
}

/// gtest assertion: `text` starts with `prefix`.
inline ::testing::AssertionResult starts_with(const std::string& text, const std::string& prefix) {
  if (text.rfind(prefix, 0) == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\n  \"" << text << "\"\ndoes not start with\n  \"" << prefix << "\"";
}

}  // namespace peft::testing
