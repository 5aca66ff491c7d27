#include "sweep/trial_watch.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>

#include <fmt/format.h>

namespace peft::sweep {

double progress_line_seconds() {
  if (const char* env = std::getenv("PEFT_PROGRESS_SECONDS")) {
    char* end = nullptr;
    const double v = std::strtod(env, &end);
    if (end != env && *end == '\0' && v >= 0 && std::isfinite(v)) return v;
  }
  return kProgressLineSeconds;
}

TrialWatch::TrialWatch(EventLog& log, int group, const TrialSpec& trial, std::string label, bool tty)
    : log_(log), group_(group), id_(trial.id), label_(std::move(label)), tty_(tty), line_seconds_(progress_line_seconds()),
      start_(std::chrono::steady_clock::now()) {
  log_.append({{"event", "trial_start"}, {"trial", id_}, {"group", group_}, {"label", label_}});
}

double TrialWatch::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void TrialWatch::attach(train::RunContext& ctx) {
  ctx.progress = [this](const train::Progress& p) { on_progress(p); };
  ctx.on_eval = [this](const train::EvalEvent& e) { on_eval(e); };
}

void TrialWatch::on_progress(const train::Progress& p) {
  const double t = elapsed();
  last_step_ = p.step;
  total_steps_ = p.total_steps;
  log_.append({{"event", "step"}, {"trial", id_}, {"group", group_}, {"step", p.step}, {"total_steps", p.total_steps},
               {"loss", p.loss}, {"lr", p.lr}, {"samples_per_second", p.samples_per_second}, {"eta_seconds", p.eta_seconds},
               {"wall_seconds", t}});
  if (tty_) {
    std::cerr << fmt::format("\r[group {}] {} step {}/{} loss {:.4f} {:.0f} samples/s ETA {:.0f}s   ", group_, id_, p.step,
                             p.total_steps, p.loss, p.samples_per_second, p.eta_seconds)
              << std::flush;
    return;
  }
  if (p.total_steps <= 0) return;
  const auto bucket = static_cast<int64_t>(std::floor(static_cast<double>(p.step) / static_cast<double>(p.total_steps) /
                                                      kProgressLineFraction + 1e-9));
  if (bucket <= last_bucket_ || t - last_line_ < line_seconds_) return;
  last_bucket_ = bucket;
  last_line_ = t;
  char clock[16];
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  std::strftime(clock, sizeof clock, "%H:%M:%S", &local);
  // One fwrite on the unbuffered stderr: a whole line even with other ranks writing.
  const std::string line =
      fmt::format("[{}] [group {}] trial {} step {}/{} ({:.0f}%) loss {:.4f} lr {:.3g} {:.0f} samples/s ETA {:.0f}s\n", clock,
                  group_, id_, p.step, p.total_steps, 100.0 * static_cast<double>(p.step) / static_cast<double>(p.total_steps),
                  p.loss, p.lr, p.samples_per_second, p.eta_seconds);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void TrialWatch::on_eval(const train::EvalEvent& e) {
  log_.append({{"event", "eval"}, {"trial", id_}, {"group", group_}, {"step", e.step}, {"total_steps", e.total_steps},
               {"epoch", e.epoch}, {"loss", e.eval.loss}, {"accuracy", e.eval.accuracy}, {"f1", e.eval.f1},
               {"perplexity", e.eval.perplexity}, {"wall_seconds", elapsed()}});
}

void TrialWatch::end(const TrialResult& r) {
  if (tty_) std::cerr << "\r" << std::string(100, ' ') << "\r" << std::flush;
  nlohmann::json metrics = nlohmann::json::object();
  for (const auto& [k, v] : r.metrics) metrics[k] = v;
  nlohmann::json line{{"event", "trial_end"}, {"trial", id_},          {"group", group_},  {"status", r.status},
                      {"step", last_step_},   {"total_steps", total_steps_}, {"wall_seconds", elapsed()}, {"metrics", metrics}};
  if (!r.error.empty()) line["error"] = r.error;
  if (r.diverged_step >= 0) line["diverged_step"] = r.diverged_step;
  log_.append(std::move(line));
}

}  // namespace peft::sweep
