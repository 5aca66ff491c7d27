#include "model/nf4_linear.h"

#include <c10/core/impl/LocalDispatchKeySet.h>

#include "core/error.h"
#include "model/distilbert.h"

namespace peft::model {

NF4Linear::NF4Linear(const torch::Tensor& weight, const torch::Tensor& bias)
    : NF4Linear(quant::quantize_nf4(weight.detach().to(torch::kFloat32)), bias) {}

NF4Linear::NF4Linear(quant::NF4Weight w, const torch::Tensor& bias) : w_(std::move(w)) {
  if (bias.defined()) bias_ = bias.detach().clone();
  register_state();
}

void NF4Linear::register_state() {
  // Registered as buffers so Module::to() moves them (in place: w_ shares the tensors).
  // Names avoid '.', which LibTorch forbids; the bitsandbytes names are used when saving.
  w_.packed = register_buffer("weight_nf4", w_.packed);
  w_.absmax_q = register_buffer("weight_absmax_q", w_.absmax_q);
  w_.nested_absmax = register_buffer("weight_nested_absmax", w_.nested_absmax);
  w_.nested_quant_map = register_buffer("weight_nested_quant_map", w_.nested_quant_map);
  w_.quant_map = register_buffer("weight_quant_map", w_.quant_map);
  if (bias_.defined()) bias_ = register_parameter("bias", bias_, /*requires_grad=*/false);
}

void NF4Linear::set_compute_dtype(c10::ScalarType t) {
  PEFT_CHECK(t == torch::kFloat32 || t == torch::kBFloat16 || t == torch::kHalf, "NF4 compute dtype must be float32, bfloat16 or float16");
  compute_dtype_ = t;
}

torch::Tensor NF4Linear::forward(const torch::Tensor& x) {
  // As bitsandbytes' Linear4bit: input cast to the compute dtype, the weight dequantized into
  // it, the product cast back. Autocast is excluded here so compute_dtype is what runs (under
  // bf16 autocast a float32 compute dtype would otherwise be re-cast to bf16).
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  if (x.scalar_type() == compute_dtype_) return quant::nf4_linear(x, w_, bias_);
  return quant::nf4_linear(x.to(compute_dtype_), w_, bias_).to(x.scalar_type());
}

torch::Tensor NF4Linear::effective_weight() const { return quant::dequantize_nf4(w_, torch::kFloat32); }

int64_t NF4Linear::storage_bytes() const {
  return w_.storage_bytes() + (bias_.defined() ? static_cast<int64_t>(bias_.nbytes()) : 0);
}

std::shared_ptr<NF4Linear> quantize_linear(DenseLinear& dense, c10::ScalarType compute_dtype) {
  auto q = std::make_shared<NF4Linear>(dense.weight_param(), dense.bias_param());
  q->set_compute_dtype(compute_dtype);
  return q;
}

int64_t quantize_encoder(DistilBert& model, c10::ScalarType compute_dtype) {
  int64_t n = 0;
  for (auto& slot : model.linear_slots()) {
    auto dense = std::dynamic_pointer_cast<DenseLinear>(slot.get());
    if (!dense) continue;
    slot.set(quantize_linear(*dense, compute_dtype));
    ++n;
  }
  return n;
}

}  // namespace peft::model
