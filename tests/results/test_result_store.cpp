// The HDF5 results store: round trips, the summary table pandas reads, refusing files it
// must not touch, replacing failed attempts, surviving a writer killed between commits,
// and merging the part files of a job array.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include <fmt/format.h>

#include <gtest/gtest.h>
#include <hdf5.h>

#include "core/error.h"
#include "results/result_store.h"
#include "test_util.h"

namespace peft {
namespace {

using testing::TempDir;
const double kNaN = std::numeric_limits<double>::quiet_NaN();

TrialSpec spec_for(const std::string& id, const std::string& method = "lora", int64_t rank = 8) {
  TrialSpec s;
  s.id = id;
  s.params = {{"method.name", method},   {"dataset.name", "synthetic_sentiment"}, {"seed", "3"},
              {"train.lr", "0.001"},     {"model.preset", "tiny"}};
  if (rank > 0) s.params["method.rank"] = std::to_string(rank);
  if (method == "sparse_lora") s.params["method.sparsity"] = "0.5";
  return s;
}

TrialResult complete_result(const std::string& id, double accuracy = 0.9) {
  TrialResult r;
  r.id = id;
  r.status = "complete";
  r.train_step = {10, 20, 30};
  r.train_loss = {0.7, 0.5, 0.3};
  r.train_lr = {1e-3, 9e-4, 8e-4};
  r.eval_step = {15, 30};
  r.eval_epoch = {0.5, 1.0};
  r.eval_accuracy = {0.8, accuracy};
  r.eval_f1 = {0.79, 0.88};
  r.eval_perplexity = {kNaN, kNaN};
  r.eval_loss = {0.5, 0.3};
  r.metrics = {{"accuracy", accuracy}, {"f1", 0.88}, {"perplexity", kNaN}, {"trainable_params", 1234}};
  r.sparsity = {{"layer.0.q_lin.lora_A", {64, 128}}, {"layer.0.q_lin.lora_B", {30, 128}}};
  r.wall_seconds = 12.5;
  r.group = 1;
  return r;
}

TrialResult failed_result(const std::string& id) {
  TrialResult r;
  r.id = id;
  r.status = "failed";
  r.error = "loss became NaN";
  r.diverged_step = 17;
  return r;
}

bool same(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

void expect_same(const std::vector<double>& a, const std::vector<double>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(same(a[i], b[i])) << i << ": " << a[i] << " vs " << b[i];
}

void expect_same(const TrialResult& a, const TrialResult& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.error, b.error);
  EXPECT_EQ(a.diverged_step, b.diverged_step);
  EXPECT_EQ(a.group, b.group);
  EXPECT_EQ(a.wall_seconds, b.wall_seconds);
  EXPECT_EQ(a.train_step, b.train_step);
  expect_same(a.train_loss, b.train_loss);
  expect_same(a.train_lr, b.train_lr);
  EXPECT_EQ(a.eval_step, b.eval_step);
  expect_same(a.eval_epoch, b.eval_epoch);
  expect_same(a.eval_accuracy, b.eval_accuracy);
  expect_same(a.eval_f1, b.eval_f1);
  expect_same(a.eval_perplexity, b.eval_perplexity);
  expect_same(a.eval_loss, b.eval_loss);
  ASSERT_EQ(a.metrics.size(), b.metrics.size());
  for (const auto& [k, v] : a.metrics) EXPECT_TRUE(same(v, b.metrics.at(k))) << k;
  EXPECT_EQ(a.sparsity, b.sparsity);
}

ResultStore new_store(const std::string& path, const std::string& name = "t") {
  return ResultStore::create(path, "[sweep]\nname = \"" + name + "\"\n", name, 4, "0.1.0");
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no error";
}

bool python_with_h5py() {
  return std::filesystem::exists("/usr/bin/python3") &&
         std::system("/usr/bin/python3 -c 'import h5py, pandas' >/dev/null 2>&1") == 0;
}

TEST(ResultStore, WriteReadRoundTrip) {
  TempDir dir;
  const std::string path = dir / "sub/r.h5";  // parent folders are created
  {
    ResultStore store = new_store(path);
    store.write_trial(spec_for("aaaaaaaaaaaa"), complete_result("aaaaaaaaaaaa"));
    store.write_trial(spec_for("bbbbbbbbbbbb", "full", 0), failed_result("bbbbbbbbbbbb"));
    expect_same(store.read_trial("aaaaaaaaaaaa"), complete_result("aaaaaaaaaaaa"));
  }
  ResultStore store = ResultStore::open_read(path);
  expect_same(store.read_trial("aaaaaaaaaaaa"), complete_result("aaaaaaaaaaaa"));
  expect_same(store.read_trial("bbbbbbbbbbbb"), failed_result("bbbbbbbbbbbb"));
  EXPECT_EQ(store.read_params("aaaaaaaaaaaa"), spec_for("aaaaaaaaaaaa").params);
  EXPECT_EQ(store.trial_ids(), (std::vector<std::string>{"aaaaaaaaaaaa", "bbbbbbbbbbbb"}));
  EXPECT_EQ(store.completed_ids(), (std::set<std::string>{"aaaaaaaaaaaa"}));
  const StoreInfo info = store.info();
  EXPECT_EQ(info.version, "0.1.0");
  EXPECT_EQ(info.sweep_name, "t");
  EXPECT_EQ(info.sweep_toml, "[sweep]\nname = \"t\"\n");
  EXPECT_EQ(info.world_size, 4);
  EXPECT_EQ(info.created.size(), 20u);  // 2024-01-01T00:00:00Z
  EXPECT_THROW(store.read_trial("cccccccccccc"), InputError);
  EXPECT_THROW(store.write_trial(spec_for("c"), complete_result("c")), std::logic_error);  // read-only
}

TEST(ResultStore, SummaryHasOneRowPerTrialWithMetricColumns) {
  TempDir dir;
  const std::string path = dir / "r.h5";
  {
    ResultStore store = new_store(path);
    store.write_trial(spec_for("aaaaaaaaaaaa", "sparse_lora"), complete_result("aaaaaaaaaaaa", 0.75));
    store.write_trial(spec_for("bbbbbbbbbbbb", "head", 0), failed_result("bbbbbbbbbbbb"));
    const auto rows = store.summary();
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].method, "sparse_lora");
    EXPECT_EQ(rows[0].rank, 8);
    EXPECT_EQ(rows[0].sparsity, 0.5);
    EXPECT_EQ(rows[0].seed, 3);
    EXPECT_EQ(rows[0].lr, 0.001);
    EXPECT_EQ(rows[0].metrics.at("accuracy"), 0.75);
    EXPECT_EQ(rows[1].status, "failed");
    EXPECT_EQ(rows[1].rank, 0);
  }
  // On disk: a 1-D compound dataset with the fixed columns and one per metric.
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  hid_t d = H5Dopen2(f, "summary", H5P_DEFAULT);
  hid_t space = H5Dget_space(d);
  hsize_t n = 0;
  H5Sget_simple_extent_dims(space, &n, nullptr);
  EXPECT_EQ(n, 2u);
  hid_t type = H5Dget_type(d);
  std::vector<std::string> names;
  for (int i = 0; i < H5Tget_nmembers(type); ++i) {
    char* name = H5Tget_member_name(type, static_cast<unsigned>(i));
    names.push_back(name);
    H5free_memory(name);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"id", "status", "method", "dataset", "rank", "sparsity", "seed", "lr",
                                             "wall_seconds", "accuracy", "f1", "perplexity", "trainable_params"}));
  H5Tclose(type);
  H5Sclose(space);
  H5Dclose(d);
  H5Fclose(f);
}

TEST(ResultStore, SummaryReadsIntoPandas) {
  if (!python_with_h5py()) GTEST_SKIP() << "/usr/bin/python3 with h5py and pandas not available";
  TempDir dir;
  const std::string path = dir / "r.h5";
  {
    ResultStore store = new_store(path);
    store.write_trial(spec_for("aaaaaaaaaaaa"), complete_result("aaaaaaaaaaaa", 0.75));
    store.write_trial(spec_for("bbbbbbbbbbbb", "full", 0), failed_result("bbbbbbbbbbbb"));
  }
  const std::string script = dir / "check.py";
  std::ofstream(script) << "import sys, h5py, pandas, math\n"
                           "f = h5py.File(sys.argv[1], 'r')\n"
                           "df = pandas.DataFrame(f['summary'][:])\n"
                           "assert len(df) == 2, df\n"
                           "assert df['id'][0] == b'aaaaaaaaaaaa', df['id'][0]\n"
                           "assert df['method'][1] == b'full'\n"
                           "assert df['accuracy'][0] == 0.75 and math.isnan(df['accuracy'][1])\n"
                           "assert df['rank'].tolist() == [8, 0]\n"
                           "t = f['trials/aaaaaaaaaaaa']\n"
                           "assert t.attrs['status'] == 'complete' and t.attrs['method.name'] == 'lora'\n"
                           "assert list(t['train/loss'][:]) == [0.7, 0.5, 0.3]\n"
                           "assert t['metrics'].attrs['trainable_params'] == 1234\n"
                           "assert list(t['sparsity/nonzero'][:]) == [64, 30]\n"
                           "assert f.attrs['sweep_name'] == 't' and f.attrs['world_size'] == 4\n";
  EXPECT_EQ(std::system(("/usr/bin/python3 " + script + " " + path).c_str()), 0);
}

TEST(ResultStore, CreateRefusesAnExistingFile) {
  TempDir dir;
  const std::string path = dir / "r.h5";
  new_store(path).close();
  const std::string message = error_of([&] { new_store(path); });
  EXPECT_NE(message.find(path + ": the results file already exists; pass --resume"), std::string::npos) << message;
  std::ofstream(dir / "notes.txt") << "hello";
  EXPECT_THROW(new_store(dir / "notes.txt"), InputError);
}

TEST(ResultStore, ResumeRefusesFilesThatAreNotResultsFiles) {
  TempDir dir;
  const std::string text = dir / "notes.txt";
  std::ofstream(text) << "not hdf5";
  EXPECT_EQ(error_of([&] { ResultStore::open_for_resume(text); }),
            text + " is not a peft-sweep results file (not an HDF5 file)");
  const std::string other = dir / "other.h5";
  H5Fclose(H5Fcreate(other.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT));
  EXPECT_EQ(error_of([&] { ResultStore::open_for_resume(other); }),
            other + " is not a peft-sweep results file (no peft_sweep_version attribute or /trials group)");
  EXPECT_EQ(error_of([&] { ResultStore::open_for_resume(dir / "missing.h5"); }),
            (dir / "missing.h5") + ": no such results file");
}

TEST(ResultStore, ResumeReplacesFailedTrialsButNeverCompleteOnes) {
  TempDir dir;
  const std::string path = dir / "r.h5";
  {
    ResultStore store = new_store(path);
    store.write_trial(spec_for("aaaaaaaaaaaa"), complete_result("aaaaaaaaaaaa"));
    store.write_trial(spec_for("bbbbbbbbbbbb"), failed_result("bbbbbbbbbbbb"));
  }
  ResultStore store = ResultStore::open_or_create(path, /*resume=*/true, "new text", "t", 2, "0.1.0");
  EXPECT_EQ(store.completed_ids(), (std::set<std::string>{"aaaaaaaaaaaa"}));
  EXPECT_EQ(store.info().sweep_toml, "new text");
  EXPECT_EQ(store.info().world_size, 2);
  store.write_trial(spec_for("bbbbbbbbbbbb"), complete_result("bbbbbbbbbbbb", 0.6));
  expect_same(store.read_trial("bbbbbbbbbbbb"), complete_result("bbbbbbbbbbbb", 0.6));
  EXPECT_EQ(store.trial_ids().size(), 2u);
  EXPECT_EQ(store.summary()[1].status, "complete");
  EXPECT_THROW(store.write_trial(spec_for("aaaaaaaaaaaa"), complete_result("aaaaaaaaaaaa")), std::logic_error);
  // Without --resume an existing file is refused.
  store.close();
  EXPECT_THROW(ResultStore::open_or_create(path, false, "x", "t", 2, "0.1.0"), InputError);
}

TEST(ResultStore, UnfinishedStagingWritesAreDroppedOnResume) {
  TempDir dir;
  const std::string path = dir / "r.h5";
  new_store(path).close();
  // What a writer killed inside write_trial() leaves: a group under /staging.
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  H5Gclose(H5Gcreate2(f, "staging", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  H5Gclose(H5Gcreate2(f, "staging/cccccccccccc", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  H5Fclose(f);
  ResultStore store = ResultStore::open_for_resume(path);
  EXPECT_TRUE(store.trial_ids().empty());
  store.write_trial(spec_for("cccccccccccc"), complete_result("cccccccccccc"));
  EXPECT_EQ(store.completed_ids().size(), 1u);
}

TEST(ResultStore, WriterKilledBetweenCommitsLosesNothingCommitted) {
  TempDir dir;
  const std::string path = dir / "r.h5";
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ResultStore store = new_store(path);
    for (int i = 0; i < 3; ++i) {
      const std::string id = std::string(12, static_cast<char>('a' + i));
      store.write_trial(spec_for(id), complete_result(id));
    }
    raise(SIGKILL);  // no close(), no destructor
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  ResultStore store = ResultStore::open_for_resume(path);
  EXPECT_EQ(store.completed_ids().size(), 3u);
  expect_same(store.read_trial("cccccccccccc"), complete_result("cccccccccccc"));
}

TEST(ResultStore, SecondWriterIsRefused) {
  if (!python_with_h5py()) GTEST_SKIP() << "/usr/bin/python3 with h5py not available";
  TempDir dir;
  const std::string path = dir / "r.h5";
  ResultStore store = new_store(path);
  const std::string cmd = "/usr/bin/python3 -c \"import h5py,sys; h5py.File(sys.argv[1], 'r+')\" " + path +
                          " >/dev/null 2>&1";
  EXPECT_NE(std::system(cmd.c_str()), 0) << "another process opened the file for writing";
}

TEST(ResultStore, MergeCombinesParts) {
  TempDir dir;
  const std::string a = dir / "part0.h5", b = dir / "part1.h5", out = dir / "merged.h5";
  {
    ResultStore p = new_store(a);
    p.write_trial(spec_for("aaaaaaaaaaaa"), complete_result("aaaaaaaaaaaa", 0.7));
    p.write_trial(spec_for("bbbbbbbbbbbb"), failed_result("bbbbbbbbbbbb"));
  }
  {
    ResultStore p = new_store(b);
    p.write_trial(spec_for("bbbbbbbbbbbb"), complete_result("bbbbbbbbbbbb", 0.8));
    p.write_trial(spec_for("cccccccccccc"), complete_result("cccccccccccc", 0.9));
    p.write_trial(spec_for("aaaaaaaaaaaa"), complete_result("aaaaaaaaaaaa", 0.1));
  }
  const MergeReport report = ResultStore::merge({a, b}, out);
  EXPECT_EQ(report.trials, 3u);
  EXPECT_EQ(report.replaced, 1u);
  EXPECT_EQ(report.duplicates, 1u);
  ResultStore merged = ResultStore::open_read(out);
  EXPECT_EQ(merged.completed_ids().size(), 3u);
  expect_same(merged.read_trial("aaaaaaaaaaaa"), complete_result("aaaaaaaaaaaa", 0.7));  // first part wins
  expect_same(merged.read_trial("bbbbbbbbbbbb"), complete_result("bbbbbbbbbbbb", 0.8));  // failed replaced
  EXPECT_EQ(merged.summary().size(), 3u);
  EXPECT_EQ(merged.info().sweep_name, "t");
  // Parts of different sweeps do not mix, and the output must be new.
  new_store(dir / "other.h5", "other").close();
  EXPECT_THROW(ResultStore::merge({a, dir / "other.h5"}, dir / "m2.h5"), InputError);
  EXPECT_THROW(ResultStore::merge({a, b}, out), InputError);
}

TEST(ResultStore, ManyTrialsKeepTheFileSmall) {
  // /summary is rewritten in place after every trial: the file must not grow with the
  // square of the number of trials.
  TempDir dir;
  const std::string path = dir / "r.h5";
  ResultStore store = new_store(path);
  for (int i = 0; i < 300; ++i) {
    const std::string id = fmt::format("{:012x}", i);
    store.write_trial(spec_for(id), complete_result(id));
  }
  store.close();
  EXPECT_LT(std::filesystem::file_size(path), 6u << 20) << "bytes";
  EXPECT_EQ(ResultStore::open_read(path).summary().size(), 300u);
}

}  // namespace
}  // namespace peft
