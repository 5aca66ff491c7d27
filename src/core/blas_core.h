#pragma once
// OpenBLAS's choice of gemm kernels, checked once at start-up.
//
// Debian's LibTorch 1.13 does its matrix products in OpenBLAS (libblas.so.3 from
// libopenblas0-openmp), built with DYNAMIC_ARCH: at load time it picks a kernel set from the
// CPU's vendor, family and model. A model it does not know falls back to "Prescott", the SSE3
// kernels of 2004. Debian 12's OpenBLAS 0.3.21 does not know Emerald Rapids (family 6, model
// 207), and a VM that reports a generic "Intel(R) Xeon(R) Processor" is no better: on such a
// machine (AVX-512 on every core) the 1024×64 by 64×256 gemm ran at 56 GFLOP/s instead of 184,
// and the tiny training step took 14 ms instead of 6.7.
//
// The remedy is OpenBLAS's own OPENBLAS_CORETYPE, which it reads only while loading, before
// main. So when the BLAS in this process is OpenBLAS on a pre-AVX kernel set, the CPU can run
// AVX2 (or AVX-512) kernels, and OPENBLAS_CORETYPE is unset, the program execs itself again with
// OPENBLAS_CORETYPE set (Haswell, or SkylakeX with AVX-512). Same pid, same arguments and
// environment, before MPI or anything else starts. OPENBLAS_CORETYPE set by the user is always
// kept, so OPENBLAS_CORETYPE=Prescott restores OpenBLAS's own choice.
#include <string>

namespace peft {

/// The kernel set of the OpenBLAS in this process (openblas_get_corename), or "" when the
/// process has no OpenBLAS (the PyTorch wheel's LibTorch uses MKL).
std::string openblas_core();

/// ", OpenBLAS NAME kernels" for the programs' banners, or "" without OpenBLAS.
std::string openblas_banner_note();

/// The best OpenBLAS kernel set that this CPU runs: "SkylakeX" (AVX-512 F/CD/BW/DQ/VL),
/// "Haswell" (AVX2 and FMA) or "" (neither).
std::string openblas_core_for_this_cpu();

/// The decision, as a pure function: the OPENBLAS_CORETYPE to restart with, or "" to go on as
/// is. `current` is openblas_core(), `user_coretype` OPENBLAS_CORETYPE (nullptr when unset),
/// `restarted` whether this process is already the restart, `fitting` openblas_core_for_this_cpu().
std::string openblas_core_to_force(const std::string& current, const char* user_coretype, bool restarted, const std::string& fitting);

/// Call first thing in main: execs the program again with a fitting OPENBLAS_CORETYPE when
/// openblas_core_to_force says so (one line on stderr from the first rank says why). Returns
/// when nothing is to be done or the exec failed (then with a warning on stderr).
void restart_for_fitting_openblas_core(char** argv);

}  // namespace peft
