// y = x · dequant(W)ᵀ + b as a custom autograd function (QLoRA, Dettmers et al. 2023, §3):
// forward dequantizes W into the compute dtype, and backward dequantizes it again instead of
// keeping the full-precision W alive between the two — that is the memory saving of QLoRA.
// Only the 4-bit codes and the scales are saved; W is frozen and gets no gradient.
#include <torch/torch.h>

#include "core/error.h"
#include "quant/nf4.h"

namespace peft::quant {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

void save_weight(AutogradContext* ctx, const NF4Weight& w) {
  auto& s = ctx->saved_data;
  s["packed"] = w.packed;
  s["absmax_q"] = w.absmax_q;
  s["nested_absmax"] = w.nested_absmax;
  s["nested_quant_map"] = w.nested_quant_map;
  s["offset"] = static_cast<double>(w.offset);
  s["shape"] = w.shape;
  s["blocksize"] = static_cast<int64_t>(w.blocksize);
  s["nested_blocksize"] = static_cast<int64_t>(w.nested_blocksize);
}

NF4Weight load_weight(AutogradContext* ctx) {
  auto& s = ctx->saved_data;
  NF4Weight w;
  w.packed = s["packed"].toTensor();
  w.absmax_q = s["absmax_q"].toTensor();
  w.nested_absmax = s["nested_absmax"].toTensor();
  w.nested_quant_map = s["nested_quant_map"].toTensor();
  w.offset = static_cast<float>(s["offset"].toDouble());
  w.shape = s["shape"].toIntVector();
  w.blocksize = static_cast<int>(s["blocksize"].toInt());
  w.nested_blocksize = static_cast<int>(s["nested_blocksize"].toInt());
  return w;
}

class NF4LinearFunction : public torch::autograd::Function<NF4LinearFunction> {
 public:
  // The bias is optional: an undefined tensor cannot be an autograd input, an empty optional
  // is simply not one.
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               const c10::optional<torch::Tensor>& bias, const NF4Weight& w) {
    save_weight(ctx, w);
    const bool has_bias = bias.has_value() && bias->defined();
    ctx->saved_data["has_bias"] = has_bias;
    if (has_bias) ctx->saved_data["bias_dtype"] = static_cast<int64_t>(bias->scalar_type());
    const torch::Tensor weight = dequantize_nf4(w, x.scalar_type());
    c10::optional<torch::Tensor> b;
    if (has_bias) b = bias->to(x.scalar_type());
    return at::linear(x, weight, b);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const torch::Tensor& grad = grads[0];
    // Recomputed, not saved: the full-precision W exists only inside this call.
    const torch::Tensor weight = dequantize_nf4(load_weight(ctx), grad.scalar_type());
    torch::Tensor grad_x = grad.matmul(weight);
    torch::Tensor grad_b;
    if (ctx->saved_data["has_bias"].toBool()) {
      const auto dtype = static_cast<torch::ScalarType>(ctx->saved_data["bias_dtype"].toInt());
      grad_b = grad.reshape({-1, grad.size(-1)}).sum(0).to(dtype);
    }
    return {grad_x, grad_b, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor nf4_linear(const torch::Tensor& x, const NF4Weight& w, const torch::Tensor& bias) {
  if (w.shape.size() != 2)
    throw_input("nf4_linear: the weight must be 2-D [out, in], got {} dims", w.shape.size());
  if (!x.defined() || x.dim() < 1 || x.size(-1) != w.shape[1])
    throw_input("nf4_linear: input's last dimension must be in_features={}, got shape {}",
                w.shape[1], x.defined() ? c10::str(x.sizes()) : std::string("undefined"));
  if (!x.is_floating_point())
    throw_input("nf4_linear: input must be floating point, got {}", c10::toString(x.scalar_type()));
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != w.shape[0]))
    throw_input("nf4_linear: bias must have shape [{}], got {}", w.shape[0], c10::str(bias.sizes()));
  c10::optional<torch::Tensor> b;
  if (bias.defined()) b = bias;
  return NF4LinearFunction::apply(x, b, w);
}

}  // namespace peft::quant
