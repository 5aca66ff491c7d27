#include "sweep/event_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <utility>

#include <spdlog/spdlog.h>

namespace peft::sweep {

std::string event_log_path(const std::string& output) { return output + ".events.jsonl"; }

void start_event_log(const std::string& output, bool resumed) {
  if (resumed) return;
  const std::string path = event_log_path(output);
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    spdlog::warn("{}: removing the event log of an earlier results file {} (a new one starts)", path, output);
    std::filesystem::remove(path, ec);
  }
}

double unix_time() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

EventLog::EventLog(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) spdlog::warn("{}: cannot open the event log ({}); the sweep runs without it", path, std::strerror(errno));
}

EventLog::EventLog(EventLog&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), path_(std::move(o.path_)), warned_(o.warned_) {}

EventLog& EventLog::operator=(EventLog&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
    path_ = std::move(o.path_);
    warned_ = o.warned_;
  }
  return *this;
}

EventLog::~EventLog() {
  if (fd_ >= 0) ::close(fd_);
}

void EventLog::append(nlohmann::json line) {
  if (fd_ < 0) return;
  if (!line.contains("time")) line["time"] = unix_time();
  // Error messages may hold bytes that are not UTF-8: replaced, never a throw.
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text += '\n';
  ssize_t n;
  do {
    n = ::write(fd_, text.data(), text.size());
  } while (n < 0 && errno == EINTR);  // nothing written yet: the retry is still one line
  if (n != static_cast<ssize_t>(text.size()) && !warned_) {
    warned_ = true;
    spdlog::warn("{}: writing the event log failed ({}); later lines may be missing", path_,
                 n < 0 ? std::strerror(errno) : "short write");
  }
}

}  // namespace peft::sweep
