#pragma once
// Where data-parallel gradients are synchronised: the trainer calls this once per step with the
// flat gradient buffer of the trainable parameters only. src/comm plugs an MPI or NCCL
// communicator in; a single process uses LocalGradSync (a no-op).
//
// Failure agreement (README "Fault handling"): a trial makes two small agreements besides the
// step all-reduces, one when training starts (Trainer::fit) and one when the trial ends (the
// sweep driver). A rank that fails before training makes the first one from the driver instead
// (agreements() tells whether it did), so every rank of a group makes the same collectives.
#include <torch/types.h>

namespace peft::train {

class GradSync {
 public:
  virtual ~GradSync() = default;
  /// Sum `flat` over the data-parallel group in place (one collective).
  virtual void allreduce_sum(torch::Tensor& flat) = 0;
  /// Sum of a scalar over the group (e.g. masked-token counts).
  virtual double allreduce_sum(double value) = 0;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  /// Every rank of the group calls this with whether it failed itself; returns the lowest
  /// failing group rank, or -1 when none failed. One small collective (per trial, not per step).
  int agree_failure(bool failed) {
    ++agreements_;
    if (size() <= 1) return failed ? rank() : -1;
    return lowest_failing_rank(failed);
  }
  /// Resets the per-trial agreement state (the driver, before each trial).
  void begin_trial() { agreements_ = 0, peer_failure_ = false; }
  int agreements() const { return agreements_; }
  /// Set by the trainer when the failure it raises is another rank's (learnt from the step's
  /// failure flag or the start-of-training agreement), so this rank does not claim it.
  void set_peer_failure() { peer_failure_ = true; }
  bool peer_failure() const { return peer_failure_; }

 protected:
  /// The collective behind agree_failure (size() > 1).
  virtual int lowest_failing_rank(bool failed) { return failed ? rank() : -1; }

 private:
  int agreements_ = 0;
  bool peer_failure_ = false;
};

class LocalGradSync : public GradSync {
 public:
  void allreduce_sum(torch::Tensor&) override {}
  double allreduce_sum(double v) override { return v; }
  int rank() const override { return 0; }
  int size() const override { return 1; }
};

}  // namespace peft::train
