#pragma once
// MPI call checking: the failing call, file:line, MPI's own error string and the world rank.
#include <mpi.h>

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace peft::comm {

inline std::string mpi_error_string(int code) {
  char buf[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, buf, &len);
  return std::string(buf, static_cast<std::size_t>(len));
}

inline int world_rank_or_minus1() {
  int init = 0, fin = 0, r = -1;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (init && !fin) MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

}  // namespace peft::comm

#define PEFT_MPI_CHECK(call)                                                                        \
  do {                                                                                              \
    int peft_mpi_rc_ = (call);                                                                      \
    if (peft_mpi_rc_ != MPI_SUCCESS)                                                                \
      throw std::runtime_error(fmt::format("{}:{}: rank {}: {} failed: {}", __FILE__, __LINE__,      \
                                           ::peft::comm::world_rank_or_minus1(), #call,             \
                                           ::peft::comm::mpi_error_string(peft_mpi_rc_)));          \
  } while (0)
