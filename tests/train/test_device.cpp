// CPU threads per rank (train/device.h): OMP_NUM_THREADS where it is set, as PyTorch takes it;
// otherwise the rank's share of the CPUs it may run on. A bad value is an input error that names
// the variable.
#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "core/error.h"
#include "train/device.h"

namespace {

/// Sets (or with nullptr, unsets) OMP_NUM_THREADS for one scope, and puts the old value back.
class OmpNumThreads {
 public:
  explicit OmpNumThreads(const char* value) {
    if (const char* old = std::getenv("OMP_NUM_THREADS")) old_ = old, had_ = true;
    value ? setenv("OMP_NUM_THREADS", value, 1) : unsetenv("OMP_NUM_THREADS");
  }
  ~OmpNumThreads() { had_ ? setenv("OMP_NUM_THREADS", old_.c_str(), 1) : unsetenv("OMP_NUM_THREADS"); }

 private:
  std::string old_;
  bool had_ = false;
};

TEST(ThreadsPerRank, ReadsOmpNumThreads) {
  using peft::train::threads_from_omp_num_threads;
  EXPECT_EQ(threads_from_omp_num_threads(nullptr), 0);
  EXPECT_EQ(threads_from_omp_num_threads(""), 0);
  EXPECT_EQ(threads_from_omp_num_threads("1"), 1);
  EXPECT_EQ(threads_from_omp_num_threads("12"), 12);
  EXPECT_EQ(threads_from_omp_num_threads("4,2"), 4) << "OpenMP's nested list: the first level is the rank's";
  for (const char* bad : {"0", "-2", "two", "2x", ",4"}) {
    try {
      threads_from_omp_num_threads(bad);
      ADD_FAILURE() << "accepted OMP_NUM_THREADS=" << bad;
    } catch (const peft::InputError& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("OMP_NUM_THREADS=\"") + bad + "\""), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("positive number of CPU threads per rank"), std::string::npos) << e.what();
    }
  }
}

TEST(ThreadsPerRank, OmpNumThreadsWinsOverTheShareOfTheNode) {
  {
    OmpNumThreads env("3");
    EXPECT_EQ(peft::train::threads_per_rank(1), 3);
    EXPECT_EQ(peft::train::threads_per_rank(64), 3) << "the user's count, even beyond the rank's share";
  }
  {
    OmpNumThreads env("zero");
    EXPECT_THROW(peft::train::threads_per_rank(1), peft::InputError);
  }
  {
    OmpNumThreads env(nullptr);
    const int online = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    EXPECT_GE(peft::train::threads_per_rank(1), 1);
    EXPECT_LE(peft::train::threads_per_rank(1), online);
    EXPECT_EQ(peft::train::threads_per_rank(online * 4), 1) << "more ranks than CPUs: one thread each";
  }
}

}  // namespace
