#pragma once
// Error conventions: bad input → std::invalid_argument naming the file/key;
// misuse of an API → std::logic_error; runtime failure → std::runtime_error.
// The mains catch std::exception once, print the message with the rank, and exit non-zero.
#include <stdexcept>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join in messages (fmt >= 9 keeps it out of format.h)

namespace peft {

/// Input that a user can fix: a file, a key, an argument. The message names it.
class InputError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

template <typename... Args>
[[noreturn]] void throw_input(fmt::format_string<Args...> f, Args&&... args) {
  throw InputError(fmt::format(f, std::forward<Args>(args)...));
}

template <typename... Args>
[[noreturn]] void throw_runtime(fmt::format_string<Args...> f, Args&&... args) {
  throw std::runtime_error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace peft

/// Internal invariant; failure is a bug in peft-sweep, not bad input.
#define PEFT_CHECK(cond, ...)                                                            \
  do {                                                                                   \
    if (!(cond))                                                                         \
      throw std::logic_error(fmt::format("{}:{}: check `{}` failed: {}", __FILE__,       \
                                         __LINE__, #cond, fmt::format(__VA_ARGS__)));    \
  } while (0)
