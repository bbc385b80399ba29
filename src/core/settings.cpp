#include "nncpp/settings.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/bit_mixer.h"
#include "core/context_models.h"
#include "nncpp/error.h"

namespace nncpp {
namespace {

void require(bool ok, const char* what) {
  if (!ok) throw Error(ErrorCode::kUsage, std::string("setting out of range: ") + what);
}

bool finite_positive(float v) {
  return std::isfinite(v) && v > 0.0f;
}

}  // namespace

const char* model_kind_name(ModelKind kind) {
  switch (kind) {
    case ModelKind::kLstm:
      return "lstm";
    case ModelKind::kTransformer:
      return "transformer";
    case ModelKind::kTrace:
      return "trace";
  }
  return "unknown";
}

uint64_t model_memory_bytes(const Settings& s) {
  const ModelSettings& m = s.model;
  const bool attention = m.kind != ModelKind::kLstm;
  // The parameters with their Adam state, and the per-segment activations, whose largest part is T*B*V
  // probabilities.
  const uint64_t V = m.vocab, H = m.hidden, E = m.embed, L = m.layers, B = m.streams;
  uint64_t params = 0, activations = 0;
  if (attention) {
    // Embeddings, per layer attention (4 H^2) + GEGLU (3 H ff), output. Autograd keeps per layer about
    // 8 H + 3 ff + heads * keys floats for each trained position (a segment: retraining runs its window
    // in chunks of a segment, one backward each) and 2 H for each memory position, plus the trained
    // positions' logits.
    const uint64_t trained = m.segment;
    const uint64_t keys = m.memory + trained;
    params = V * std::max<uint64_t>(E, H) + L * (4 * H * H + 3 * H * m.ff) + V * H;
    activations =
        B * (trained * V + L * (trained * (8 * H + 3 * m.ff + uint64_t{m.heads} * keys) + m.memory * 2 * H));
  } else {
    params = V * E + L * 4 * H * (E + 2 * H) + V * L * H;
    activations = B * m.segment * (V + L * (E + 8 * H));
  }
  // The mixer's context tables: 2^table_bits buckets per model, of 32 bytes (symbol domain) or 64 bytes
  // (binary domain, which also keeps weight sets, probability maps and the record bits tables).
  uint64_t tables = s.mix.binary ? BitMixer::fixed_bytes() : 0;
  for (uint32_t i = 0; i < 32; ++i)
    if ((s.mix.models >> i & 1) && i != kRecordBits)  // record bits: fixed tables, counted above
      tables += (uint64_t{s.mix.binary ? 64u : 32u} << s.mix.table_bits);
  return (2 * params + activations) * sizeof(float) + tables;
}

void validate(const Settings& s) {
  const ModelSettings& m = s.model;
  // Bounds are generous for real use and small enough that a hostile header cannot ask for absurd memory.
  require(m.kind == ModelKind::kLstm || m.kind == ModelKind::kTransformer || m.kind == ModelKind::kTrace,
          "model kind");
  require(m.vocab >= 2 && m.vocab <= 65536, "vocab (2..65536)");
  require(m.layers >= 1 && m.layers <= 64, "layers (1..64)");
  require(m.hidden >= 1 && m.hidden <= 8192, "hidden (1..8192)");
  require(m.embed >= 1 && m.embed <= 8192, "embed (1..8192)");
  require(m.streams >= 1 && m.streams <= 4096, "streams (1..4096)");
  require(m.segment >= 1 && m.segment <= 4096, "segment (1..4096)");
  require(uint64_t{m.streams} * m.segment <= (1u << 20), "streams * segment (at most 2^20)");
  require(finite_positive(m.lr) && m.lr < 1.0f, "lr (0..1)");
  require(finite_positive(m.lr_floor) && m.lr_floor <= m.lr, "lr floor (0..lr)");
  require(m.lr_decay >= 1, "lr decay (>= 1)");
  require(std::isfinite(m.beta2) && m.beta2 > 0.0f && m.beta2 < 1.0f, "beta2 (0..1)");
  require(finite_positive(m.adam_eps), "adam eps (> 0)");
  require(std::isfinite(m.grad_clip) && m.grad_clip >= 0.0f, "grad clip (>= 0)");
  require(m.train_max_skip <= 1024, "train max skip (0..1024)");
  require(std::isfinite(m.train_margin) && m.train_margin >= 0.0f && m.train_margin < 1.0f,
          "train margin (0..1)");
  const bool attention = m.kind != ModelKind::kLstm;
  if (attention) {
    require(m.heads >= 1 && m.heads <= 256 && m.hidden % m.heads == 0, "heads (1..256, dividing hidden)");
    require(m.ff >= 1 && m.ff <= 65536, "ff (1..65536)");
    require(m.memory <= 4096, "memory (0..4096)");
    require(m.group >= 1 && m.group <= 64, "group (1..64)");
    require(m.kind == ModelKind::kTrace || m.group == 1, "group (TRACE models only)");
    require(m.retrain_period == 0 || (m.retrain_window >= 1 && m.retrain_window <= 4096),
            "retrain window (1..4096)");
    require(uint64_t{m.streams} * m.retrain_window <= (1u << 20), "streams * retrain window (at most 2^20)");
    require(finite_positive(m.retrain_lr) && m.retrain_lr < 1.0f, "retrain lr (0..1)");
    require(std::isfinite(m.dropout) && m.dropout >= 0.0f && m.dropout < 1.0f, "dropout (0..1)");
  } else {
    // The LSTM ignores the attention fields; insisting on their defaults keeps one file = one meaning.
    const ModelSettings defaults;
    require(m.heads == defaults.heads && m.ff == defaults.ff && m.memory == 0 && m.group == 1 &&
                m.dropout == 0.0f,
            "heads/ff/memory/group/dropout (attention models only)");
    require(m.retrain_period == 0, "retraining (attention models only)");
  }
  require(s.codec.block_bytes >= 1024 && s.codec.block_bytes <= (1u << 30), "block size (1 KiB..1 GiB)");
  require(s.codec.min_stream_symbols >= 1, "min stream symbols (>= 1)");
  require(s.codec.match_order <= 64, "match order (0..64)");
  require(s.codec.long_match_order <= 64, "long match order (0..64)");
  require(s.codec.filter <= 1, "filter (0 none, 1 x86)");
  require(s.codec.match_hash_bits >= 10 && s.codec.match_hash_bits <= 26, "match hash bits (10..26)");
  const MixSettings& x = s.mix;
  require(x.models < (1u << kNumContextModels), "context models (bit mask)");
  require(x.table_bits >= 10 && x.table_bits <= 24, "context table bits (10..24)");
  require(x.count_limit >= 2 && x.count_limit <= (x.binary ? 1023 : 60000),
          x.binary ? "context count limit (2..1023 in the binary domain)" : "context count limit (2..60000)");
  require(finite_positive(x.lr) && x.lr < 1.0f, "mixer lr (0..1)");
  require(std::isfinite(x.initial_weight) && std::fabs(x.initial_weight) <= 4.0f, "mixer initial weight");
  require(finite_positive(x.escape) && x.escape <= 64.0f, "context escape (0..64)");
  // A hostile header must not make the decoder allocate absurd memory (the decoder also checks the need
  // against the machine's memory or --memlimit before building anything).
  require(model_memory_bytes(s) <= (uint64_t{32} << 30), "model size (at most 32 GiB)");
  require(s.runtime.threads >= 1 && s.runtime.threads <= kMaxThreads, "threads (1..64)");
  require(s.runtime.ranks >= 1 && s.runtime.ranks <= kMaxRanks, "ranks (1..1024)");
  require(s.runtime.ranks <= s.model.streams, "ranks (at most one per stream: ranks <= streams)");
  require(s.runtime.ranks == 1 ? s.runtime.rank_backend.empty() : s.runtime.rank_backend == "gloo",
          "rank backend (gloo with several ranks, none with one)");
  require(!s.runtime.device.empty() && s.runtime.device.size() <= 64, "device name");
  require(s.runtime.dtype == "float32" || s.runtime.dtype == "tf32" || s.runtime.dtype == "bfloat16",
          "dtype (float32, tf32, bfloat16)");
}

}  // namespace nncpp
