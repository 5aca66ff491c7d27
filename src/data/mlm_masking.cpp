#include "data/mlm_masking.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "core/error.h"

namespace peft::data {

namespace {

bool bracketed(const std::string& token) {
  return token.size() > 2 && token.front() == '[' && token.back() == ']';
}

}  // namespace

MaskingOptions MaskingOptions::for_tokenizer(const text::WordPieceTokenizer& tokenizer) {
  MaskingOptions o;
  o.mask_id = tokenizer.mask_id();
  const auto n = static_cast<int64_t>(tokenizer.vocab_size());
  int64_t low = 0;
  while (low < n && bracketed(tokenizer.id_to_token(static_cast<int32_t>(low)))) ++low;
  o.random_low = low;
  o.random_high = n;
  for (int32_t id : {tokenizer.pad_id(), tokenizer.unk_id(), tokenizer.cls_id(), tokenizer.sep_id(),
                     tokenizer.mask_id()})
    if (id >= 0) o.special_ids.push_back(id);
  o.validate();
  return o;
}

void MaskingOptions::validate() const {
  auto fraction = [](double p) { return p >= 0 && p <= 1; };
  if (!fraction(probability)) throw_input("MLM probability must be in [0, 1], got {}", probability);
  if (!fraction(mask_fraction) || !fraction(random_fraction) || mask_fraction + random_fraction > 1)
    throw_input("MLM mask/random fractions must be in [0, 1] and sum to at most 1, got {} and {}",
                mask_fraction, random_fraction);
  if (mask_id < 0) throw_input("MLM masking needs a [MASK] token in the vocabulary");
  if (random_low < 0 || random_low >= random_high)
    throw_input("MLM random-token range [{}, {}) is empty: the vocabulary has no ordinary tokens",
                random_low, random_high);
}

at::Generator make_generator(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

MaskedTokens mask_tokens(const torch::Tensor& ids, const MaskingOptions& opts, at::Generator& generator) {
  PEFT_CHECK(ids.scalar_type() == torch::kInt64 && ids.device().is_cpu(), "MLM masking takes CPU int64 ids");
  const auto sizes = ids.sizes();
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  torch::Tensor eligible = ids.ge(opts.random_low);
  for (int64_t s : opts.special_ids)
    if (s >= opts.random_low) eligible.logical_and_(ids.ne(s));
  const torch::Tensor selected = torch::rand(sizes, generator, f32).lt(opts.probability).logical_and_(eligible);
  // One draw decides the fate of a selected token: [0, m) mask, [m, m + r) random, else keep.
  const torch::Tensor fate = torch::rand(sizes, generator, f32);
  const torch::Tensor to_mask = fate.lt(opts.mask_fraction).logical_and_(selected);
  const torch::Tensor to_random =
      fate.ge(opts.mask_fraction).logical_and_(fate.lt(opts.mask_fraction + opts.random_fraction)).logical_and_(selected);
  const torch::Tensor random_ids =
      torch::randint(opts.random_low, opts.random_high, sizes, generator, torch::TensorOptions().dtype(torch::kInt64));

  MaskedTokens out;
  out.labels = ids.masked_fill(selected.logical_not(), kIgnoreIndex);
  out.input_ids = ids.masked_fill(to_mask, opts.mask_id);
  out.input_ids = torch::where(to_random, random_ids, out.input_ids);
  return out;
}

MaskedTokens mask_tokens(const torch::Tensor& ids, const MaskingOptions& opts, uint64_t seed) {
  at::Generator g = make_generator(seed);
  return mask_tokens(ids, opts, g);
}

}  // namespace peft::data
