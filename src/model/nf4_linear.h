#pragma once
// A frozen linear layer whose weight is stored in NF4 with double-quantized scales (QLoRA) and
// dequantized on the fly in forward and backward (quant::nf4_linear); the bias stays in the
// compute dtype. LoRA adapters wrap it like any other LinearBase.
#include "model/linear.h"
#include "quant/nf4.h"

namespace peft::model {

class NF4Linear : public LinearBase {
 public:
  /// Quantizes `weight` [out, in]; `bias` may be undefined.
  NF4Linear(const torch::Tensor& weight, const torch::Tensor& bias);
  explicit NF4Linear(quant::NF4Weight w, const torch::Tensor& bias);
  torch::Tensor forward(const torch::Tensor& x) override;
  int64_t in_features() const override { return w_.shape.at(1); }
  int64_t out_features() const override { return w_.shape.at(0); }
  torch::Tensor effective_weight() const override;
  torch::Tensor bias() const override { return bias_; }
  const quant::NF4Weight& nf4() const { return w_; }
  /// QLoRA's compute dtype (bitsandbytes' bnb_4bit_compute_dtype): the weight dequantizes
  /// straight into it and the matmul runs in it, autocast or not; the output comes back in
  /// the input's dtype. float32 by default.
  void set_compute_dtype(c10::ScalarType t);
  c10::ScalarType compute_dtype() const { return compute_dtype_; }
  /// Bytes of the quantized weight (codes, scales, maps) plus the bias.
  int64_t storage_bytes() const;

 private:
  void register_state();
  quant::NF4Weight w_;
  torch::Tensor bias_;
  c10::ScalarType compute_dtype_ = torch::kFloat32;
};

/// `dense` quantized to NF4 (its bias kept), computing in `compute_dtype`: the one way a
/// dense layer becomes QLoRA's base, for the trainer's QLoRA set-up and `quantize_encoder`.
std::shared_ptr<NF4Linear> quantize_linear(DenseLinear& dense, c10::ScalarType compute_dtype = torch::kFloat32);

/// Replaces every DenseLinear of the encoder with an NF4Linear (what QLoRA's base is).
/// Returns the number of layers quantized.
class DistilBert;
int64_t quantize_encoder(DistilBert& model, c10::ScalarType compute_dtype = torch::kFloat32);

}  // namespace peft::model
