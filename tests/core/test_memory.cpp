// The heap tuning for training loops (core/memory.h): a freed large block is reused without
// faulting its pages in again, and PEFT_MALLOC is checked.
#include <sys/resource.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include <gtest/gtest.h>

#include "core/memory.h"

namespace {

long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

// Allocates, touches and frees `bytes`, as a step does with an activation; returns the page
// faults it took.
long faults_of_one_block(std::size_t bytes) {
  const long before = minor_faults();
  auto* p = static_cast<char*>(std::malloc(bytes));
  if (!p) throw std::bad_alloc();
  std::memset(p, 1, bytes);
  // The compiler must not drop the allocation and its stores as dead: the block escapes here.
  asm volatile("" : : "r"(p) : "memory");
  std::free(p);
  return minor_faults() - before;
}

}  // namespace

TEST(HeapTuning, PeftMallocValues) {
  EXPECT_TRUE(peft::heap_tuning_wanted(nullptr));
  EXPECT_TRUE(peft::heap_tuning_wanted("tuned"));
  EXPECT_FALSE(peft::heap_tuning_wanted("system"));
  try {
    peft::heap_tuning_wanted("jemalloc");
    FAIL() << "no error for an unknown PEFT_MALLOC";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("PEFT_MALLOC=\"jemalloc\""), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("system"), std::string::npos) << e.what();
  }
}

#if defined(__GLIBC__)
TEST(HeapTuning, ALargeBlockIsReusedWithoutFaults) {
  if (std::getenv("PEFT_MALLOC")) GTEST_SKIP() << "PEFT_MALLOC is set in the environment";
  // 64 MiB: above glibc's largest mmap threshold (32 MiB), so untuned every allocation of it is
  // a fresh mmap and each of its 16,384 pages faults again.
  const std::size_t bytes = std::size_t{64} << 20;
  const long pages = static_cast<long>(bytes / 4096);
  const long untuned = faults_of_one_block(bytes);
  if (untuned < pages / 2)
    GTEST_SKIP() << "an untuned 64 MiB block took " << untuned << " page faults, not one per 4 KiB page (transparent huge pages?)";
  ASSERT_TRUE(peft::tune_heap_for_steps());
  EXPECT_TRUE(peft::tune_heap_for_steps()) << "a second call keeps the tuning";
  faults_of_one_block(bytes);  // the first one from the heap faults in once
  const long again = faults_of_one_block(bytes);
  EXPECT_LT(again, pages / 100) << "the second block of the same size should reuse the first one's pages (untuned: " << untuned
                                << " faults)";
}
#endif
