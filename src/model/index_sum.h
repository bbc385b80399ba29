// Deterministic, graph-capturable row sums by index, for the hand-written gradients.
#pragma once

#include <torch/torch.h>

#include <vector>

namespace nncpp {

// out[index[r]] += src[r] over all rows r: index [R] int64, src [R, C] -> [n, C] (or [R] -> [n]).
// On the CPU this is index_add_ (sequential, deterministic). On CUDA index_add_ uses atomics (sums in
// arrival order) or, in deterministic mode, a sort whose sizes go through the host, which a CUDA graph
// cannot capture; a one-hot matrix product [n, R] x [R, C] is deterministic, capturable, and cheap here.
inline torch::Tensor index_sum(const torch::Tensor& index, const torch::Tensor& src, int64_t n) {
  if (src.device().is_cpu()) {
    std::vector<int64_t> shape = src.sizes().vec();
    shape[0] = n;
    return torch::zeros(shape, src.options()).index_add_(0, index, src);
  }
  torch::Tensor one_hot =
      (torch::arange(n, index.options()).unsqueeze(1) == index.unsqueeze(0)).to(src.scalar_type());  // [n, R]
  return src.dim() == 1 ? torch::mv(one_hot, src) : torch::mm(one_hot, src);
}

}  // namespace nncpp
