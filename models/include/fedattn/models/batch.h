// One mini-batch, as every model's forward() takes it. Text models read the token fields,
// tabular models the feature fields; unused fields stay undefined.
#pragma once

#include <torch/types.h>

namespace fedattn::models {

struct Batch {
  torch::Tensor input_ids;       // [B, T] int64 token ids (text)
  torch::Tensor token_type_ids;  // [B, T] int64 segment ids (text; undefined = all 0)
  torch::Tensor attention_mask;  // [B, T] int64/bool, 1 for real tokens, 0 for padding (text)
  torch::Tensor numeric;         // [B, num_numeric] float32, normalised (tabular)
  torch::Tensor categorical;     // [B, num_categorical] int64 category codes (tabular)
  torch::Tensor labels;          // [B] int64 class index, or float32 target for regression

  // Examples in the batch; 0 for an empty (default) batch.
  int64_t size() const {
    for (const torch::Tensor* t : {&labels, &input_ids, &numeric, &categorical}) {
      if (t->defined()) return t->size(0);
    }
    return 0;
  }
  // Tokens in the batch that are not padding (text), or rows (tabular): the unit of tokens/s.
  int64_t tokens() const {
    if (attention_mask.defined()) return attention_mask.sum().item<int64_t>();
    return input_ids.defined() ? input_ids.numel() : size();
  }
  Batch to(const torch::Device& device) const {
    auto move = [&](const torch::Tensor& t) { return t.defined() ? t.to(device, /*non_blocking=*/true) : t; };
    return Batch{move(input_ids), move(token_type_ids), move(attention_mask), move(numeric), move(categorical),
                 move(labels)};
  }
};

}  // namespace fedattn::models
