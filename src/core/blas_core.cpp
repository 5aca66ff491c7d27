#include "core/blas_core.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>

namespace peft {
namespace {

// Set in the restarted process, so that it never restarts again (say, when the kernel set asked
// for is not built into this OpenBLAS and it falls back once more).
constexpr const char* kRestartedVar = "PEFT_OPENBLAS_RESTARTED";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

/// OpenBLAS's kernel sets for CPUs without AVX (its corenames): where one of these runs on a CPU
/// with AVX2, OpenBLAS did not recognise the CPU.
bool pre_avx_core(const std::string& name) {
  static constexpr std::array<const char*, 16> kNames = {"prescott", "core2",      "penryn",     "dunnington", "nehalem", "atom",
                                                         "katmai",   "coppermine", "northwood",  "banias",     "athlon",  "opteron",
                                                         "opteron(sse3)", "barcelona", "nano", "bobcat"};
  const std::string n = lower(name);
  return std::any_of(kNames.begin(), kNames.end(), [&](const char* k) { return n == k; });
}

/// Whether this process is the first of its job (or not under a launcher at all): only that one
/// explains the restart, not each of 8 ranks.
bool first_rank() {
  for (const char* var : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"}) {
    const char* v = std::getenv(var);
    if (v && *v) return std::strcmp(v, "0") == 0;
  }
  return true;
}

}  // namespace

std::string openblas_core() {
  using CoreNameFn = char* (*)();
  auto fn = reinterpret_cast<CoreNameFn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (!fn) return "";
  const char* name = fn();
  return name ? name : "";
}

std::string openblas_banner_note() {
  const std::string core = openblas_core();
  return core.empty() ? "" : ", OpenBLAS " + core + " kernels";
}

std::string openblas_core_for_this_cpu() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // libgcc checks the OS's XSAVE state too (XCR0), so AVX-512 counts only where the kernel saves it.
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return "";
}

std::string openblas_core_to_force(const std::string& current, const char* user_coretype, bool restarted, const std::string& fitting) {
  if (current.empty() || restarted || fitting.empty()) return "";
  if (user_coretype != nullptr) return "";  // the user's choice, even an empty one, as OpenBLAS reads it
  return pre_avx_core(current) ? fitting : "";
}

void restart_for_fitting_openblas_core(char** argv) {
  const std::string current = openblas_core();
  const char* restarted = std::getenv(kRestartedVar);
  const char* user = std::getenv("OPENBLAS_CORETYPE");
  const std::string target = openblas_core_to_force(current, user, restarted != nullptr, openblas_core_for_this_cpu());
  if (restarted != nullptr && user != nullptr && std::strcmp(user, restarted) == 0 && first_rank() && pre_avx_core(current))
    std::cerr << program_invocation_short_name << ": warning: OpenBLAS still runs its " << current << " kernels after OPENBLAS_CORETYPE=" << restarted
              << "; matrix products will be several times slower than this CPU allows\n";
  if (target.empty()) return;
  if (first_rank())
    std::cerr << program_invocation_short_name << ": OpenBLAS chose its " << current << " kernels (no AVX) on this CPU, which runs " << target
              << " ones (OpenBLAS does not know its model); restarting with OPENBLAS_CORETYPE=" << target
              << " (set OPENBLAS_CORETYPE to choose yourself)\n";
  setenv("OPENBLAS_CORETYPE", target.c_str(), 1);
  setenv(kRestartedVar, target.c_str(), 1);
  std::cout.flush();
  std::cerr.flush();
  execv("/proc/self/exe", argv);
  const int err = errno;
  // Still here: go on with OpenBLAS's own choice, and leave the environment as it was.
  unsetenv("OPENBLAS_CORETYPE");
  unsetenv(kRestartedVar);
  std::cerr << program_invocation_short_name << ": warning: could not restart with OPENBLAS_CORETYPE=" << target << " (" << std::strerror(err)
            << "); going on with OpenBLAS's " << current << " kernels\n";
}

}  // namespace peft
