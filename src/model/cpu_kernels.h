#pragma once
// Which of peft-sweep's own CPU kernels replace LibTorch's ops in the model: the attention's
// per-head products (model/head_matmul.h) and GELU (model/gelu.h).
//
// PEFT_CPU_KERNELS=peft (the default) uses them; PEFT_CPU_KERNELS=torch uses LibTorch's ops
// instead, for a comparison or to rule them out. The CPU dropout (model/dropout.h) is not
// switched here: it draws other masks than torch's, so a switch would change the training
// numbers, not just their speed.

namespace peft::model {

/// PEFT_CPU_KERNELS, read once: cpu_kernels_wanted of its value.
bool own_cpu_kernels();

/// A PEFT_CPU_KERNELS value (nullptr when unset): true for unset or "peft", false for "torch";
/// anything else throws, naming the variable.
bool cpu_kernels_wanted(const char* value);

}  // namespace peft::model
