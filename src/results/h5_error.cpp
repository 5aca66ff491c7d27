// HDF5's error stack turned into exception messages.
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "results/h5_handle.h"

namespace peft::h5 {
namespace {

herr_t collect(unsigned, const H5E_error2_t* e, void* data) {
  auto& text = *static_cast<std::string*>(data);
  if (!text.empty()) text += "; ";
  text += fmt::format("{}: {}", e->func_name ? e->func_name : "?", e->desc ? e->desc : "?");
  return 0;
}

/// The current thread's HDF5 error stack, outermost call first, then cleared.
std::string error_stack() {
  std::string text;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect, &text);
  H5Eclear2(H5E_DEFAULT);
  return text.empty() ? "no HDF5 error message" : text;
}

std::string message(const char* expr, const char* file, int line) {
  return fmt::format("HDF5 call `{}` failed ({}:{}): {}", expr, file, line, error_stack());
}

}  // namespace

void fail(const char* expr, const char* file, int line) { throw std::runtime_error(message(expr, file, line)); }

void warn(const char* expr, const char* file, int line) { spdlog::warn("{}", message(expr, file, line)); }

void quiet() {
  // The automatic printer is per thread; turning it off again is harmless.
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

}  // namespace peft::h5
