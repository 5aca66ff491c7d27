# Every dependency comes from find_package; a missing one stops configuration with the
# Debian package that provides it.
macro(peft_require pkg debpkg)
  find_package(${pkg} ${ARGN} QUIET)
  if(NOT ${pkg}_FOUND)
    message(FATAL_ERROR "peft-sweep needs ${pkg}: install it with `apt-get install ${debpkg}` "
                        "(or point CMAKE_PREFIX_PATH at another installation).")
  endif()
endmacro()

peft_require(Torch libtorch-dev)            # any LibTorch >= 1.13, CPU or CUDA, via CMAKE_PREFIX_PATH
if(Torch_VERSION AND Torch_VERSION VERSION_LESS 1.13)
  message(FATAL_ERROR "peft-sweep needs LibTorch >= 1.13, found ${Torch_VERSION}")
endif()
peft_require(MPI "libopenmpi-dev openmpi-bin" COMPONENTS C)
peft_require(HDF5 libhdf5-dev COMPONENTS C)
peft_require(Boost libboost-program-options-dev COMPONENTS program_options)
peft_require(tomlplusplus libtomlplusplus-dev)
peft_require(spdlog libspdlog-dev)
peft_require(fmt libfmt-dev)
peft_require(nlohmann_json nlohmann-json3-dev)
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
