#pragma once
// RAII for HDF5 identifiers and the check macros for HDF5 C calls (internal to src/results).
// A failed call throws std::runtime_error naming the call, file:line and HDF5's own error
// stack; destructors use the print-only variant.
#include <hdf5.h>

#include <string>
#include <utility>

namespace peft::h5 {

/// Throws std::runtime_error: "HDF5 call `expr` failed (file:line): <HDF5 error stack>".
[[noreturn]] void fail(const char* expr, const char* file, int line);
/// Logs the same message instead of throwing (for destructors).
void warn(const char* expr, const char* file, int line);
/// Turns off HDF5's own printing of error stacks (we report them); idempotent.
void quiet();

}  // namespace peft::h5

/// Evaluates an HDF5 call returning hid_t/herr_t/htri_t and yields its result; throws when
/// it is negative.
#define PEFT_H5_CALL(expr)                                                \
  ([&]() {                                                                \
    auto peft_h5_result_ = (expr);                                        \
    if (peft_h5_result_ < 0) ::peft::h5::fail(#expr, __FILE__, __LINE__); \
    return peft_h5_result_;                                               \
  }())

/// Statement form for calls whose result is not needed.
#define PEFT_H5_CHECK(expr)                                      \
  do {                                                           \
    if ((expr) < 0) ::peft::h5::fail(#expr, __FILE__, __LINE__); \
  } while (0)

/// Print-only variant for destructors and clean-up paths.
#define PEFT_H5_WARN(expr)                                       \
  do {                                                           \
    if ((expr) < 0) ::peft::h5::warn(#expr, __FILE__, __LINE__); \
  } while (0)

namespace peft::h5 {

/// One HDF5 identifier, closed by `Close` when the handle goes.
template <herr_t (*Close)(hid_t)>
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset() {
    if (id_ >= 0) PEFT_H5_WARN(Close(id_));
    id_ = H5I_INVALID_HID;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

using File = Handle<H5Fclose>;
using Group = Handle<H5Gclose>;
using Dataset = Handle<H5Dclose>;
using Space = Handle<H5Sclose>;
using Type = Handle<H5Tclose>;
using Attr = Handle<H5Aclose>;
using Plist = Handle<H5Pclose>;

}  // namespace peft::h5
