# Every dependency comes from find_package; a missing one stops configuration with the
# Debian package that provides it.
macro(peft_require pkg debpkg)
  find_package(${pkg} ${ARGN} QUIET)
  if(NOT ${pkg}_FOUND)
    message(FATAL_ERROR "peft-sweep needs ${pkg}: install it with `apt-get install ${debpkg}` "
                        "(or point CMAKE_PREFIX_PATH at another installation).")
  endif()
endmacro()

# A CUDA LibTorch's CMake config probes this machine's GPUs for its arch flags unless told
# which to use; the kernels target Ampere and Hopper, and build machines have no GPU.
if(NOT DEFINED TORCH_CUDA_ARCH_LIST AND NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(TORCH_CUDA_ARCH_LIST "8.0;9.0")
endif()
peft_require(Torch libtorch-dev)            # any LibTorch >= 1.13, CPU or CUDA, via CMAKE_PREFIX_PATH
if(Torch_VERSION AND Torch_VERSION VERSION_LESS 1.13)
  message(FATAL_ERROR "peft-sweep needs LibTorch >= 1.13, found ${Torch_VERSION}")
endif()
# LibTorch's config looks its own libraries up with find_library(... PATHS <its lib folder>),
# and PATHS come after the system folders: with Debian's libtorch-dev installed, a wheel's
# LibTorch 2.x would link Debian's libc10.so (1.13) beside its own. Take the one that belongs.
if(DEFINED TORCH_INSTALL_PREFIX AND c10_LIBRARY AND EXISTS ${TORCH_INSTALL_PREFIX}/lib/libc10.so)
  get_filename_component(_peft_c10_dir ${c10_LIBRARY} DIRECTORY)
  get_filename_component(_peft_torch_lib ${TORCH_INSTALL_PREFIX}/lib ABSOLUTE)
  if(NOT _peft_c10_dir STREQUAL _peft_torch_lib)
    set(_peft_libs "")
    foreach(_peft_l IN LISTS TORCH_LIBRARIES)
      if(_peft_l STREQUAL c10_LIBRARY)
        set(_peft_l ${_peft_torch_lib}/libc10.so)
      endif()
      list(APPEND _peft_libs ${_peft_l})
    endforeach()
    set(TORCH_LIBRARIES ${_peft_libs})
    message(STATUS "peft-sweep: LibTorch's c10 is ${_peft_torch_lib}/libc10.so (not ${c10_LIBRARY})")
    set(c10_LIBRARY ${_peft_torch_lib}/libc10.so CACHE FILEPATH "c10 of the LibTorch in use" FORCE)
  endif()
endif()
# LibTorch's at::parallel_for is a header template: with an OpenMP LibTorch (Debian's and the
# wheels' alike: AT_PARALLEL_OPENMP) its `#pragma omp parallel` is compiled into our own
# translation units, and without -fopenmp it is silently dropped, leaving our parallel loops
# (NF4 quantisation and dequantisation, dropout masks, tokenisation) on one thread. Both
# LibTorch builds load libgomp.so.1 by that soname, so the process holds one OpenMP runtime
# and torch::set_num_threads sizes our loops too.
peft_require(OpenMP "build-essential (GCC's libgomp)" COMPONENTS CXX)
peft_require(MPI "libopenmpi-dev openmpi-bin" COMPONENTS C)
peft_require(HDF5 libhdf5-dev COMPONENTS C)
peft_require(Boost libboost-program-options-dev COMPONENTS program_options)
peft_require(tomlplusplus libtomlplusplus-dev)
peft_require(spdlog libspdlog-dev)
peft_require(fmt libfmt-dev)
peft_require(nlohmann_json nlohmann-json3-dev)

# A LibTorch from a PyTorch wheel ships fmt's headers (a newer major version than Debian's) in
# its include folder, which the compiler would then take for <fmt/...> in place of the fmt
# that Debian's libfmt and spdlog were built with. PEFT_FMT_FIRST_DIR holds only a link to the
# system fmt and goes on the include path as a plain -I, which GCC searches before every
# -isystem folder (LibTorch's among them).
set(PEFT_FMT_FIRST_DIR "")
foreach(_peft_inc IN LISTS TORCH_INCLUDE_DIRS)
  if(EXISTS ${_peft_inc}/fmt/format.h)
    get_target_property(_peft_fmt_inc fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT _peft_fmt_inc)
      set(_peft_fmt_inc /usr/include)
    endif()
    list(GET _peft_fmt_inc 0 _peft_fmt_inc)
    set(PEFT_FMT_FIRST_DIR ${CMAKE_BINARY_DIR}/fmt-first)
    file(MAKE_DIRECTORY ${PEFT_FMT_FIRST_DIR})
    file(CREATE_LINK ${_peft_fmt_inc}/fmt ${PEFT_FMT_FIRST_DIR}/fmt SYMBOLIC)
    message(STATUS "peft-sweep: ${_peft_inc} carries its own fmt; ${_peft_fmt_inc}/fmt (fmt ${fmt_VERSION}) goes first")
    break()
  endif()
endforeach()
if(PEFT_BUILD_TESTS)
  peft_require(GTest "libgtest-dev libgmock-dev")
endif()

# utf8proc ships no CMake config in Debian 12: find header and library ourselves.
find_path(UTF8PROC_INCLUDE_DIR utf8proc.h)
find_library(UTF8PROC_LIBRARY NAMES utf8proc)
if(NOT UTF8PROC_INCLUDE_DIR OR NOT UTF8PROC_LIBRARY)
  message(FATAL_ERROR "peft-sweep needs utf8proc: install it with `apt-get install libutf8proc-dev`.")
endif()
add_library(peft::utf8proc UNKNOWN IMPORTED)
set_target_properties(peft::utf8proc PROPERTIES IMPORTED_LOCATION ${UTF8PROC_LIBRARY}
                      INTERFACE_INCLUDE_DIRECTORIES ${UTF8PROC_INCLUDE_DIR})

# Debian's LibTorch uses OpenBLAS; without the OpenMP variant it falls back to the
# reference BLAS (~15x slower matrix products). Warn at configure time rather than run slow.
if(EXISTS /etc/debian_version AND NOT EXISTS /usr/lib/x86_64-linux-gnu/openblas-openmp)
  message(WARNING "libopenblas0-openmp is not installed: LibTorch matmuls will use the slow "
                  "reference BLAS. Install it with `apt-get install libopenblas0-openmp`.")
endif()
