#pragma once
// Where data-parallel gradients are synchronised: the trainer calls this once per step with the
// flat gradient buffer of the trainable parameters only. src/comm plugs an MPI or NCCL
// communicator in; a single process uses LocalGradSync (a no-op).
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
};

class LocalGradSync : public GradSync {
 public:
  void allreduce_sum(torch::Tensor&) override {}
  double allreduce_sum(double v) override { return v; }
  int rank() const override { return 0; }
  int size() const override { return 1; }
};

}  // namespace peft::train
