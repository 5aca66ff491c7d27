#include "train/trial_checkpoint.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <system_error>

#include <ATen/Context.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "core/error.h"
#include "model/tensor_io.h"

namespace peft::train {
namespace fs = std::filesystem;
namespace {

constexpr int kFormat = 1;
constexpr const char* kMetaKey = "peft_sweep_checkpoint";

std::string file_name(int rank, int64_t step) { return fmt::format("rank{}.step{}.safetensors", rank, step); }

torch::Tensor i64(const std::vector<int64_t>& v) {
  return torch::tensor(std::vector<int64_t>(v.begin(), v.end()), torch::kLong);
}
torch::Tensor f64(const std::vector<double>& v) { return torch::tensor(v, torch::kFloat64); }

std::vector<int64_t> to_i64(const torch::Tensor& t) {
  auto c = t.to(torch::kLong).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}
std::vector<double> to_f64(const torch::Tensor& t) {
  auto c = t.to(torch::kFloat64).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

// The curves of TrialResult, by tensor name.
struct Curves {
  std::vector<std::pair<std::string, std::vector<int64_t>*>> ints;
  std::vector<std::pair<std::string, std::vector<double>*>> reals;
};
Curves curves(TrialResult& r) {
  return {{{"curve.train_step", &r.train_step}, {"curve.eval_step", &r.eval_step}},
          {{"curve.train_loss", &r.train_loss},
           {"curve.train_lr", &r.train_lr},
           {"curve.eval_epoch", &r.eval_epoch},
           {"curve.eval_accuracy", &r.eval_accuracy},
           {"curve.eval_f1", &r.eval_f1},
           {"curve.eval_perplexity", &r.eval_perplexity},
           {"curve.eval_loss", &r.eval_loss}}};
}

}  // namespace

torch::Tensor rng_state(const torch::Device& device) {
  auto cpu = at::detail::getDefaultCPUGenerator().get_state();
  if (!device.is_cuda()) return cpu;
  auto gpu = at::globalContext().defaultGenerator(device).get_state();
  return torch::cat({cpu, gpu});
}

void set_rng_state(const torch::Device& device, const torch::Tensor& state) {
  auto cpu_gen = at::detail::getDefaultCPUGenerator();
  const int64_t n_cpu = cpu_gen.get_state().numel();
  PEFT_CHECK(state.numel() >= n_cpu, "checkpoint RNG state of {} bytes, the CPU generator's is {}", state.numel(), n_cpu);
  cpu_gen.set_state(state.narrow(0, 0, n_cpu).clone());
  if (device.is_cuda()) {
    auto gpu_gen = at::globalContext().defaultGenerator(device);
    gpu_gen.set_state(state.narrow(0, n_cpu, state.numel() - n_cpu).clone());
  }
}

void write_checkpoint_file(const std::string& dir, int rank, const CheckpointKey& key, const TrainerSnapshot& snap,
                           const TrialResult& result) {
  fs::create_directories(dir);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  tensors.emplace_back("rng", snap.rng.to(torch::kCPU));
  if (rank == 0) {
    tensors.emplace_back("params", snap.params);
    tensors.emplace_back("exp_avg", snap.exp_avg);
    tensors.emplace_back("exp_avg_sq", snap.exp_avg_sq);
    tensors.emplace_back("counters", i64({snap.step, snap.optimizer_steps, snap.loss_n, snap.samples, snap.tokens}));
    tensors.emplace_back("reals", f64({snap.loss_acc, snap.train_seconds}));
    for (const auto& [name, t] : snap.method_state) tensors.emplace_back("method." + name, t);
    auto& r = const_cast<TrialResult&>(result);  // read only: curves() hands out pointers
    for (auto& [name, v] : curves(r).ints) tensors.emplace_back(name, i64(*v));
    for (auto& [name, v] : curves(r).reals) tensors.emplace_back(name, f64(*v));
  }
  nlohmann::json meta = {{"format", kFormat}, {"trial", key.trial_id}, {"dp", key.dp},       {"rank", rank},
                         {"step", snap.step}, {"total_steps", key.total_steps}, {"numel", key.numel}};
  model::write_safetensors((fs::path(dir) / file_name(rank, snap.step)).string(), tensors, {{kMetaKey, meta.dump()}});
}

void publish_checkpoint(const std::string& dir, int64_t step) {
  const fs::path latest = fs::path(dir) / "latest";
  const fs::path tmp = fs::path(dir) / fmt::format("latest.tmp.{}", ::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << step << "\n";
    out.flush();
    if (!out) throw_runtime("{}: cannot write the checkpoint pointer", tmp.string());
  }
  fs::rename(tmp, latest);
  // Files of other steps (older sets, or a newer set a crash left incomplete) are garbage now.
  const std::string keep = fmt::format(".step{}.safetensors", step);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("rank", 0) == 0 && name.find(keep) == std::string::npos) fs::remove(e.path(), ec);
  }
}

std::optional<int64_t> latest_checkpoint(const std::string& dir) {
  std::ifstream in(fs::path(dir) / "latest");
  int64_t step = -1;
  if (!(in >> step) || step < 0) return std::nullopt;
  return step;
}

bool read_checkpoint(const std::string& dir, int rank, int64_t step, const CheckpointKey& key, TrainerSnapshot& snap,
                     TrialResult& result, std::string& why) {
  try {
    auto check = [&](const fs::path& path, int file_rank) -> std::map<std::string, torch::Tensor> {
      st::SafetensorsReader reader(path.string());
      const auto& md = reader.metadata();
      auto it = md.find(kMetaKey);
      if (it == md.end()) throw_input("{}: not a peft-sweep checkpoint", path.string());
      const auto meta = nlohmann::json::parse(it->second);
      const auto expect = [&](const char* field, const auto& want) {
        if (meta.at(field) != want)
          throw_input("{}: {} is {}, this run's is {}", path.string(), field, meta.at(field).dump(), nlohmann::json(want).dump());
      };
      expect("format", kFormat);
      expect("trial", key.trial_id);
      expect("dp", key.dp);
      expect("rank", file_rank);
      expect("step", step);
      expect("total_steps", key.total_steps);
      expect("numel", key.numel);
      return model::read_safetensors(path.string());
    };
    auto shared = check(fs::path(dir) / file_name(0, step), 0);
    auto own = rank == 0 ? shared : check(fs::path(dir) / file_name(rank, step), rank);
    const auto c = to_i64(shared.at("counters"));
    const auto re = to_f64(shared.at("reals"));
    PEFT_CHECK(c.size() == 5 && re.size() == 2, "checkpoint counters of unexpected size");
    snap.step = c[0];
    snap.optimizer_steps = c[1];
    snap.loss_n = c[2];
    snap.samples = c[3];
    snap.tokens = c[4];
    snap.loss_acc = re[0];
    snap.train_seconds = re[1];
    snap.params = shared.at("params");
    snap.exp_avg = shared.at("exp_avg");
    snap.exp_avg_sq = shared.at("exp_avg_sq");
    snap.rng = own.at("rng");
    for (auto& [name, t] : snap.method_state) {
      auto it = shared.find("method." + name);
      if (it == shared.end() || !it->second.sizes().equals(t.sizes()))
        throw_input("{}: no method state {} of {} elements", dir, name, t.numel());
      t = it->second;
    }
    for (auto& [name, v] : curves(result).ints) *v = to_i64(shared.at(name));
    for (auto& [name, v] : curves(result).reals) *v = to_f64(shared.at(name));
    return true;
  } catch (const std::exception& e) {
    why = e.what();
    return false;
  }
}

void remove_checkpoints(const std::string& dir) {
  if (dir.empty()) return;
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) spdlog::warn("{}: cannot remove the trial's checkpoints: {}", dir, ec.message());
}

}  // namespace peft::train
