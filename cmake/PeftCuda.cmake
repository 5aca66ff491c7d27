# PEFT_WITH_CUDA / PEFT_WITH_NCCL default ON when the toolkit / library is found.
# A build without CUDA compiles no .cu file; GPU requests then fail with
# "not compiled with CUDA".
include(CheckLanguage)
if(NOT DEFINED CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
  set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
endif()
check_language(CUDA)
set(_peft_cuda_default OFF)
if(CMAKE_CUDA_COMPILER)
  set(_peft_cuda_default ON)
endif()
option(PEFT_WITH_CUDA "Compile the CUDA kernels in kernels/" ${_peft_cuda_default})

set(PEFT_QUANT_CUDA_SOURCES "")
if(PEFT_WITH_CUDA)
  if(NOT CMAKE_CUDA_COMPILER)
    message(FATAL_ERROR "PEFT_WITH_CUDA=ON but no CUDA compiler was found; install the CUDA toolkit or set CMAKE_CUDA_COMPILER.")
  endif()
  # A CUDA LibTorch sets CMAKE_CUDA_ARCHITECTURES to OFF (it wants TORCH_CUDA_ARCH_LIST), so
  # the kernels' architectures are a target property of their own.
  set(PEFT_CUDA_ARCHITECTURES "80;90" CACHE STRING "GPU architectures of kernels/ (Ampere, Hopper)")
  set(CMAKE_CUDA_STANDARD 17)
  # One CUDA runtime per process: the shared one, which a CUDA LibTorch loads too (the
  # default static runtime would put a second copy into every binary).
  set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  file(GLOB PEFT_QUANT_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/kernels/*.cu)
  message(STATUS "peft-sweep: CUDA kernels ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, archs ${PEFT_CUDA_ARCHITECTURES})")
else()
  message(STATUS "peft-sweep: CUDA kernels OFF")
endif()

# The CUDA runtime and NCCL that the process will use. A LibTorch from a PyTorch wheel brings
# its own (site-packages/nvidia/cu<N>/lib/libcudart.so.<N>, nvidia/nccl); linking the
# toolkit's copies as well would load two runtimes or two NCCLs into one process. So with a
# wheel's LibTorch, peft-sweep links the wheel's runtime and NCCL, and uses the toolkit only
# for nvcc and headers. That pair is consistent when the toolkit is the same major version
# and no newer than the wheel's runtime (CUDA's minor-version compatibility: code built with
# 13.0 runs on a 13.2 runtime, not the other way round); anything else stops here.
set(PEFT_WHEEL_NVIDIA_DIR "")
if(PEFT_WITH_CUDA AND DEFINED TORCH_INSTALL_PREFIX AND EXISTS ${TORCH_INSTALL_PREFIX}/version.py)
  file(STRINGS ${TORCH_INSTALL_PREFIX}/version.py _peft_torch_cuda REGEX "^cuda")
  string(REGEX MATCH "([0-9]+)\\.([0-9]+)" _peft_wheel_cuda "${_peft_torch_cuda}")
  if(_peft_wheel_cuda)
    set(PEFT_TORCH_CUDA_VERSION ${_peft_wheel_cuda})
    string(REGEX MATCH "^([0-9]+)" _peft_wheel_major "${_peft_wheel_cuda}")
    get_filename_component(_peft_site ${TORCH_INSTALL_PREFIX} DIRECTORY)
    set(PEFT_WHEEL_NVIDIA_DIR ${_peft_site}/nvidia)
    find_library(PEFT_CUDART_LIBRARY NAMES libcudart.so.${_peft_wheel_major} cudart
                 PATHS ${PEFT_WHEEL_NVIDIA_DIR}/cu${_peft_wheel_major}/lib ${PEFT_WHEEL_NVIDIA_DIR}/cuda_runtime/lib NO_DEFAULT_PATH)
    string(REGEX MATCH "^([0-9]+)\\.([0-9]+)" _peft_tk "${CUDAToolkit_VERSION}")
    string(REGEX MATCH "^([0-9]+)" _peft_tk_major "${_peft_tk}")
    if(NOT _peft_tk_major STREQUAL _peft_wheel_major OR _peft_tk VERSION_GREATER _peft_wheel_cuda)
      message(FATAL_ERROR "The CUDA toolkit (nvcc ${CUDAToolkit_VERSION}, ${CUDAToolkit_BIN_DIR}) does not pair with "
                          "this LibTorch's CUDA runtime ${_peft_wheel_cuda}: the toolkit must be CUDA ${_peft_wheel_major}.x and "
                          "no newer than ${_peft_wheel_cuda}. Point CMAKE_CUDA_COMPILER / CUDAToolkit_ROOT at such a toolkit, "
                          "or configure with -DPEFT_WITH_CUDA=OFF.")
    endif()
    if(PEFT_CUDART_LIBRARY)
      message(STATUS "peft-sweep: nvcc ${CUDAToolkit_VERSION} with the wheel's CUDA ${_peft_wheel_cuda} runtime (${PEFT_CUDART_LIBRARY})")
    endif()
  endif()
endif()
if(PEFT_WITH_CUDA)
  add_library(peft::cudart INTERFACE IMPORTED)
  if(PEFT_CUDART_LIBRARY)
    target_link_libraries(peft::cudart INTERFACE ${PEFT_CUDART_LIBRARY})
    target_include_directories(peft::cudart INTERFACE ${CUDAToolkit_INCLUDE_DIRS})
    # LibTorch's own CMake config links the toolkit's runtime (torch::cudart): point it at the
    # wheel's, the one libtorch_cuda.so was built for.
    if(TARGET torch::cudart)
      set_property(TARGET torch::cudart PROPERTY INTERFACE_LINK_LIBRARIES ${PEFT_CUDART_LIBRARY})
    endif()
    # The toolkit's lib folder holds libraries of the same sonames (libcudart.so.13,
    # libnccl.so.2, libnvrtc.so.13): the wheel's folders go first on the run-time search path.
    get_filename_component(_peft_cudart_dir ${PEFT_CUDART_LIBRARY} DIRECTORY)
    target_link_options(peft::cudart INTERFACE
      "LINKER:-rpath,${_peft_cudart_dir}:${PEFT_WHEEL_NVIDIA_DIR}/nccl/lib:${PEFT_WHEEL_NVIDIA_DIR}/cudnn/lib:${TORCH_INSTALL_PREFIX}/lib")
  else()
    target_link_libraries(peft::cudart INTERFACE CUDA::cudart)
  endif()
endif()

set(_peft_nccl_hints "")
if(PEFT_WHEEL_NVIDIA_DIR)
  set(_peft_nccl_hints ${PEFT_WHEEL_NVIDIA_DIR}/nccl)   # the NCCL LibTorch itself loads
endif()
if(_peft_nccl_hints)
  find_path(NCCL_INCLUDE_DIR nccl.h PATHS ${_peft_nccl_hints}/include NO_DEFAULT_PATH)
  find_library(NCCL_LIBRARY NAMES libnccl.so.2 nccl PATHS ${_peft_nccl_hints}/lib NO_DEFAULT_PATH)
endif()
find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${_peft_nccl_hints} ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include ENV NCCL_HOME PATH_SUFFIXES include)
find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2 HINTS ${_peft_nccl_hints} ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib64 ENV NCCL_HOME PATH_SUFFIXES lib lib64)
set(_peft_nccl_default OFF)
if(PEFT_WITH_CUDA AND NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
  set(_peft_nccl_default ON)
endif()
option(PEFT_WITH_NCCL "Build the NCCL communicator" ${_peft_nccl_default})
if(PEFT_WITH_NCCL)
  if(NOT PEFT_WITH_CUDA)
    message(FATAL_ERROR "PEFT_WITH_NCCL=ON needs PEFT_WITH_CUDA=ON")
  endif()
  if(NOT NCCL_INCLUDE_DIR OR NOT NCCL_LIBRARY)
    message(FATAL_ERROR "PEFT_WITH_NCCL=ON but nccl.h / libnccl were not found; install NCCL (libnccl-dev) or set NCCL_HOME.")
  endif()
  add_library(peft::nccl UNKNOWN IMPORTED)
  set_target_properties(peft::nccl PROPERTIES IMPORTED_LOCATION ${NCCL_LIBRARY}
                        INTERFACE_INCLUDE_DIRECTORIES ${NCCL_INCLUDE_DIR})
  target_link_libraries(peft::nccl INTERFACE peft::cudart)
  message(STATUS "peft-sweep: NCCL ON (${NCCL_LIBRARY})")
endif()
