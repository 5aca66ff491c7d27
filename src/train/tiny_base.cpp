#include "train/tiny_base.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <limits>
#include <memory>
#include <vector>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "core/error.h"
#include "data/synthetic_lexicon.h"
#include "model/checkpoint.h"
#include "train/task_cache.h"
#include "train/task_source.h"
#include "train/trainer.h"

namespace peft::train {
namespace fs = std::filesystem;
namespace {

/// A file lock (flock) held for the object's lifetime.
class FileLock {
 public:
  explicit FileLock(const std::string& path) {
    fd_ = ::open(path.c_str(), O_CREAT | O_RDWR, 0644);
    if (fd_ < 0) throw_runtime("{}: cannot open lock file", path);
    ::flock(fd_, LOCK_EX);
  }
  ~FileLock() {
    if (fd_ >= 0) {
      ::flock(fd_, LOCK_UN);
      ::close(fd_);
    }
  }

 private:
  int fd_ = -1;
};

}  // namespace

std::string ensure_pretrained_tiny(const ModelSettings& settings, uint64_t seed) {
  const auto vocab = data::synthetic_vocab();
  const std::string dir =
      (fs::path(settings.cache_dir) / fmt::format("tiny-mlm-v{}-s{}-seed{}", vocab.size(), settings.pretrain_steps, seed)).string();
  if (fs::exists(fs::path(dir) / "model.safetensors")) return dir;
  fs::create_directories(settings.cache_dir);
  FileLock lock((fs::path(settings.cache_dir) / ".pretrain.lock").string());
  if (fs::exists(fs::path(dir) / "model.safetensors")) return dir;  // another process made it

  spdlog::info("pretraining the tiny base with MLM on the synthetic corpus ({} steps), cached in {}", settings.pretrain_steps, dir);
  TrialSpec pre;
  pre.model.preset = "tiny";
  pre.method.method = "full";
  pre.dataset.name = "synthetic_mlm";
  pre.dataset.block_size = 32;
  pre.dataset.synthetic_train = 4000;
  pre.dataset.synthetic_eval = 200;
  pre.train.max_steps = settings.pretrain_steps;
  pre.train.batch_size = 64;
  pre.train.lr = 1e-3;
  pre.train.warmup_ratio = 0.05;
  pre.train.device = "cpu";
  pre.seed = seed;
  const auto& task = cached_task(task_spec(pre, ""));
  auto m = std::make_shared<model::DistilBert>(model::DistilBertConfig::tiny(static_cast<int64_t>(vocab.size())),
                                               std::vector<model::Head>{model::Head::MLM});
  m->init_weights(seed);
  m->init_head(model::Head::MLM, true, seed + 1);
  for (auto& p : m->parameters(true)) p.set_requires_grad(true);
  m->embeddings->position_embeddings->weight.set_requires_grad(!m->config().sinusoidal_pos_embds);
  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (auto& p : m->named_parameters(true))
    if (p.value().requires_grad()) params.emplace_back(p.key(), p.value());
  LocalGradSync local;
  Trainer trainer(*m, TaskKind::MLM, Trainer::decay_groups("all", params, pre.train.lr, pre.train.weight_decay), pre.train, {},
                  local, torch::kCPU, seed);
  TaskSource source(task);
  TrialResult r;
  trainer.fit(source, r);
  spdlog::info("tiny base pretrained: MLM loss {:.3f} → {:.3f}, eval perplexity {:.2f}", r.train_loss.front(), r.train_loss.back(),
               r.eval_perplexity.empty() ? std::numeric_limits<double>::quiet_NaN() : r.eval_perplexity.back());
  const std::string tmp = dir + ".tmp." + std::to_string(::getpid());
  model::save_pretrained(*m, tmp);
  fs::rename(tmp, dir);
  return dir;
}

}  // namespace peft::train
