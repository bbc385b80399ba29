// The predictors' side of several ranks (include/nncpp/ranks.h): the gradient sum before each optimizer
// step and the count of coded positions the loss is averaged over.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "nncpp/ranks.h"

namespace nncpp {

// Replaces each gradient (*grads)[k] of params[k] by its sum over the ranks (rank order, the same bits
// everywhere); an undefined gradient counts as zeros. Nothing to do when ranks is null or has one rank.
void sum_gradients(RankGroup* ranks, const std::vector<torch::Tensor>& params,
                   std::vector<torch::Tensor>* grads);

// The sum of `count` over the ranks (the count itself without ranks).
int64_t sum_count(RankGroup* ranks, int64_t count);

}  // namespace nncpp
