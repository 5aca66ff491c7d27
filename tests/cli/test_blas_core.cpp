// OpenBLAS's kernel set (core/blas_core.h): the programs restart with a fitting
// OPENBLAS_CORETYPE where OpenBLAS fell back to pre-AVX kernels on an AVX2 CPU, and keep the
// user's OPENBLAS_CORETYPE always.
#include <regex>
#include <string>

#include <gtest/gtest.h>

#include "core/blas_core.h"
#include "test_util.h"

namespace {

using Output = peft::testing::CommandResult;

/// peft-tool --version with `env` in front (env -u removes a variable).
Output version(const std::string& env) {
  return peft::testing::run_command("env -u PEFT_OPENBLAS_RESTARTED " + env + " " + std::string(PEFT_BIN_DIR) + "/peft-tool --version");
}

/// The kernel set the banner names ("OpenBLAS NAME kernels"), or "" when it names none.
std::string banner_core(const std::string& output) {
  std::smatch m;
  static const std::regex re("OpenBLAS (\\S+) kernels\\)");
  return std::regex_search(output, m, re) ? m[1].str() : "";
}

TEST(BlasCore, RestartsOnlyFromPreAvxKernelsOnAnAvx2Cpu) {
  // The machine of 2026-12-07: Emerald Rapids behind a VM, OpenBLAS 0.3.21 on Prescott.
  EXPECT_EQ(peft::openblas_core_to_force("Prescott", nullptr, false, "SkylakeX"), "SkylakeX");
  EXPECT_EQ(peft::openblas_core_to_force("Nehalem", nullptr, false, "Haswell"), "Haswell");
  EXPECT_EQ(peft::openblas_core_to_force("PRESCOTT", nullptr, false, "Haswell"), "Haswell");
  // OpenBLAS knew the CPU: nothing to do.
  EXPECT_EQ(peft::openblas_core_to_force("SkylakeX", nullptr, false, "SkylakeX"), "");
  EXPECT_EQ(peft::openblas_core_to_force("Zen", nullptr, false, "SkylakeX"), "");
  EXPECT_EQ(peft::openblas_core_to_force("Haswell", nullptr, false, "SkylakeX"), "");
  // The user's OPENBLAS_CORETYPE is kept, even an empty one.
  EXPECT_EQ(peft::openblas_core_to_force("Prescott", "Prescott", false, "SkylakeX"), "");
  EXPECT_EQ(peft::openblas_core_to_force("Prescott", "", false, "SkylakeX"), "");
  // Once only; never without OpenBLAS, or on a CPU without AVX2.
  EXPECT_EQ(peft::openblas_core_to_force("Prescott", nullptr, true, "SkylakeX"), "");
  EXPECT_EQ(peft::openblas_core_to_force("", nullptr, false, "SkylakeX"), "");
  EXPECT_EQ(peft::openblas_core_to_force("Prescott", nullptr, false, ""), "");
}

TEST(BlasCore, TheProgramsRunFittingKernels) {
  const Output r = version("-u OPENBLAS_CORETYPE");
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string core = banner_core(r.output);
  if (core.empty()) GTEST_SKIP() << "this LibTorch does not use OpenBLAS (the wheel's uses MKL)";
  const std::string fitting = peft::openblas_core_for_this_cpu();
  if (fitting.empty()) GTEST_SKIP() << "this CPU has no AVX2: OpenBLAS's own choice stands";
  // Whatever OpenBLAS chose by itself, the program runs kernels of this CPU's generation.
  EXPECT_EQ(peft::openblas_core_to_force(core, nullptr, false, fitting), "") << r.output;
  // A restart, when there was one, said why in one line.
  if (r.output.find("restarting with OPENBLAS_CORETYPE=") != std::string::npos) {
    EXPECT_EQ(core, fitting) << r.output;
    EXPECT_NE(r.output.find("set OPENBLAS_CORETYPE to choose yourself"), std::string::npos) << r.output;
  }
}

TEST(BlasCore, TheUsersCoreTypeIsKept) {
  const Output r = version("OPENBLAS_CORETYPE=Prescott");
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string core = banner_core(r.output);
  if (core.empty()) GTEST_SKIP() << "this LibTorch does not use OpenBLAS (the wheel's uses MKL)";
  EXPECT_EQ(core, "Prescott") << r.output;
  EXPECT_EQ(r.output.find("restarting"), std::string::npos) << r.output;
}

}  // namespace
