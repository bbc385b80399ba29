#include "nncpp/settings.h"

#include <cmath>
#include <string>

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
  }
  return "unknown";
}

void validate(const Settings& s) {
  const ModelSettings& m = s.model;
  // Bounds are generous for real use and small enough that a hostile header cannot ask for absurd memory.
  require(m.kind == ModelKind::kLstm, "model kind");
  require(m.vocab >= 2 && m.vocab <= 65536, "vocab (2..65536)");
  require(m.layers >= 1 && m.layers <= 32, "layers (1..32)");
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
  require(s.codec.block_bytes >= 1024 && s.codec.block_bytes <= (1u << 30), "block size (1 KiB..1 GiB)");
  require(s.codec.min_stream_symbols >= 1, "min stream symbols (>= 1)");
  require(s.codec.match_order <= 64, "match order (0..64)");
  require(s.codec.match_hash_bits >= 10 && s.codec.match_hash_bits <= 26, "match hash bits (10..26)");
  // A hostile header must not make the decoder allocate absurd memory: bound the parameters (with Adam
  // state) and the per-segment activations, whose largest part is T*B*V probabilities.
  const uint64_t V = m.vocab, H = m.hidden, E = m.embed, L = m.layers;
  const uint64_t params = V * E + L * 4 * H * (E + 2 * H) + V * L * H;
  const uint64_t activations = uint64_t{m.streams} * m.segment * (V + L * (E + 8 * H));
  require((2 * params + activations) * sizeof(float) <= (uint64_t{16} << 30), "model size (at most 16 GiB)");
  require(s.runtime.threads >= 1 && s.runtime.threads <= 256, "threads (1..256)");
  require(!s.runtime.device.empty() && s.runtime.device.size() <= 64, "device name");
}

}  // namespace nncpp
