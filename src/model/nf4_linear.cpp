#include "model/nf4_linear.h"

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

torch::Tensor NF4Linear::forward(const torch::Tensor& x) { return quant::nf4_linear(x, w_, bias_); }

torch::Tensor NF4Linear::effective_weight() const { return quant::dequantize_nf4(w_, torch::kFloat32); }

int64_t NF4Linear::storage_bytes() const {
  return w_.storage_bytes() + (bias_.defined() ? static_cast<int64_t>(bias_.nbytes()) : 0);
}

int64_t quantize_encoder(DistilBert& model) {
  int64_t n = 0;
  for (auto& slot : model.linear_slots()) {
    auto dense = std::dynamic_pointer_cast<DenseLinear>(slot.get());
    if (!dense) continue;
    slot.set(std::make_shared<NF4Linear>(dense->weight_param(), dense->bias_param()));
    ++n;
  }
  return n;
}

}  // namespace peft::model
