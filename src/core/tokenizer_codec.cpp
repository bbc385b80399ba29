// Dictionary: bytes -> symbols (tokenize), symbols -> bytes (detokenize), and the serialized form.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "nncpp/error.h"
#include "nncpp/tokenizer.h"
#include "tokenizer_internal.h"

namespace nncpp {

using namespace tokenizer_detail;

namespace {

// What detokenize needs to know about a symbol to take its fast paths.
enum SymbolKind : uint8_t {
  kKindOther = 0,
  kKindLetters = 1,  // only letters: inside a word, so an all-capitals word goes on through it
  kKindEscape = 2,
};

constexpr size_t kCopyPad = 16;  // slack after the string arena and the output, for fixed-size copies

// uint32 key -> uint32 value, open addressing, no deletion (trie edges).
class EdgeMap {
 public:
  static constexpr uint32_t kNone = 0xffffffffu;

  explicit EdgeMap(size_t expected) {
    size_t size = 16;
    while (size < expected * 2) size *= 2;
    keys_.assign(size, kNone);
    values_.assign(size, 0);
  }

  uint32_t find(uint32_t key) const {
    size_t mask = keys_.size() - 1;
    for (size_t i = mix(key) & mask;; i = (i + 1) & mask) {
      if (keys_[i] == key) return values_[i];
      if (keys_[i] == kNone) return kNone;
    }
  }

  // Inserts key -> value if key is absent; returns the value stored for key.
  uint32_t insert(uint32_t key, uint32_t value) {
    size_t mask = keys_.size() - 1;
    size_t i = mix(key) & mask;
    for (; keys_[i] != kNone; i = (i + 1) & mask) {
      if (keys_[i] == key) return values_[i];
    }
    keys_[i] = key;
    values_[i] = value;
    return value;
  }

 private:
  static uint32_t mix(uint32_t key) { return static_cast<uint32_t>((key * 0x9e3779b97f4a7c15ull) >> 32); }

  std::vector<uint32_t> keys_;  // kNone = free (node << 8 | byte never reaches it: nodes < 2^23)
  std::vector<uint32_t> values_;
};

uint32_t fnv1a(uint32_t h, const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 16777619u;
  return h;
}

[[noreturn]] void corrupt(const std::string& what) {
  throw Error(ErrorCode::kCorrupt, "tokenizer dictionary: " + what);
}

}  // namespace

struct Dictionary::Impl {
  explicit Impl(const std::vector<std::vector<uint8_t>>& learnt);

  // Cuts one unit into the fewest symbols; among equally short cuts, the longest first piece.
  void segment(const uint8_t* p, size_t len, std::vector<uint16_t>* out) const;

  int vocab = 0;
  std::vector<uint8_t> bytes;  // symbol strings, then kCopyPad zero bytes
  std::vector<uint32_t> offset;
  std::vector<uint8_t> length;
  std::vector<uint8_t> kind;
  std::vector<int32_t> node_symbol;  // trie node -> symbol ending there, or -1; node 0 is the root
  EdgeMap edges;                     // (node << 8 | byte) -> child node
};

namespace {

size_t total_length(const std::vector<std::vector<uint8_t>>& strings) {
  size_t total = 0;
  for (const auto& s : strings) total += s.size();
  return total;
}

}  // namespace

Dictionary::Impl::Impl(const std::vector<std::vector<uint8_t>>& learnt)
    : vocab(kFirstLearnt + static_cast<int>(learnt.size())), edges(256 + total_length(learnt)) {
  offset.resize(vocab);
  length.resize(vocab);
  kind.resize(vocab);
  node_symbol.push_back(-1);
  auto add = [&](int id, const uint8_t* p, size_t len) {
    offset[id] = static_cast<uint32_t>(bytes.size());
    length[id] = static_cast<uint8_t>(len);
    bytes.insert(bytes.end(), p, p + len);
    bool letters = len > 0;
    for (size_t i = 0; i < len; ++i) letters = letters && is_letter(p[i]);
    kind[id] = letters ? kKindLetters : kKindOther;
    uint32_t node = 0;
    for (size_t i = 0; i < len; ++i) {
      uint32_t next = static_cast<uint32_t>(node_symbol.size());
      uint32_t child = edges.insert((node << 8) | p[i], next);
      if (child == next) node_symbol.push_back(-1);
      node = child;
    }
    node_symbol[node] = id;
  };
  for (int b = 0; b < 256; ++b) {
    uint8_t c = static_cast<uint8_t>(b);
    add(b, &c, 1);
  }
  for (int id = 256; id < kFirstLearnt; ++id) {  // the escapes: no bytes
    offset[id] = 0;
    length[id] = 0;
    kind[id] = kKindEscape;
  }
  for (size_t i = 0; i < learnt.size(); ++i)
    add(kFirstLearnt + static_cast<int>(i), learnt[i].data(), learnt[i].size());
  bytes.resize(bytes.size() + kCopyPad, 0);
}

void Dictionary::Impl::segment(const uint8_t* p, size_t len, std::vector<uint16_t>* out) const {
  // best[i]: fewest symbols for p[i, len). Every byte is a symbol, so a cut always exists.
  uint8_t best[kMaxUnit + 1];
  uint8_t take_len[kMaxUnit];
  uint16_t take_sym[kMaxUnit];
  best[len] = 0;
  for (size_t i = len; i-- > 0;) {
    best[i] = 0xff;
    uint32_t node = 0;
    for (size_t j = i; j < len; ++j) {
      node = edges.find((node << 8) | p[j]);
      if (node == EdgeMap::kNone) break;
      int32_t sym = node_symbol[node];
      if (sym >= 0 && best[j + 1] + 1 <= best[i]) {  // <=: prefer the longer piece on ties
        best[i] = static_cast<uint8_t>(best[j + 1] + 1);
        take_len[i] = static_cast<uint8_t>(j + 1 - i);
        take_sym[i] = static_cast<uint16_t>(sym);
      }
    }
  }
  for (size_t i = 0; i < len; i += take_len[i]) out->push_back(take_sym[i]);
}

Dictionary::Dictionary() = default;

Dictionary::Dictionary(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

bool Dictionary::empty() const {
  return impl_ == nullptr;
}

int Dictionary::vocab_size() const {
  return impl_ ? impl_->vocab : 256;
}

std::vector<uint8_t> Dictionary::symbol_bytes(int id) const {
  if (id < 0 || id >= vocab_size()) return {};
  if (!impl_) return {static_cast<uint8_t>(id)};
  const uint8_t* p = impl_->bytes.data() + impl_->offset[id];
  return std::vector<uint8_t>(p, p + impl_->length[id]);
}

Dictionary Dictionary::from_strings(std::vector<std::vector<uint8_t>> strings) {
  if (strings.empty()) return Dictionary();
  if (strings.size() > static_cast<size_t>(kMaxVocab - kFirstLearnt)) corrupt("too many symbols");
  for (const auto& s : strings) {
    if (s.size() < 2 || s.size() > kMaxUnit) corrupt("symbol length out of range");
  }
  std::sort(strings.begin(), strings.end());
  if (std::adjacent_find(strings.begin(), strings.end()) != strings.end()) corrupt("duplicate symbol");
  return Dictionary(std::make_shared<const Impl>(strings));
}

// ---- tokenize ----

namespace {

// Per-call cache: distinct unit -> its symbols, so each distinct word is segmented once per call.
class UnitCache {
 public:
  UnitCache() : slots_(1 << 10) {}

  // Returns the cached symbols of the unit, or null (then call put()).
  const uint16_t* get(const uint8_t* p, size_t len, uint32_t hash, size_t* count) {
    size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.len == 0) {
        free_slot_ = i;
        return nullptr;
      }
      if (s.hash == hash && s.len == len && std::memcmp(unit_bytes_.data() + s.unit, p, len) == 0) {
        *count = s.count;
        return symbols_.data() + s.symbols;
      }
    }
  }

  // Stores the symbols of the unit last missed by get().
  void put(const uint8_t* p, size_t len, uint32_t hash, const uint16_t* syms, size_t count) {
    slots_[free_slot_] =
        Slot{hash, static_cast<uint32_t>(unit_bytes_.size()), static_cast<uint32_t>(symbols_.size()),
             static_cast<uint8_t>(len), static_cast<uint8_t>(count)};
    unit_bytes_.insert(unit_bytes_.end(), p, p + len);
    symbols_.insert(symbols_.end(), syms, syms + count);
    if (++used_ * 2 > slots_.size()) grow();
  }

 private:
  struct Slot {
    uint32_t hash = 0;
    uint32_t unit = 0;
    uint32_t symbols = 0;
    uint8_t len = 0;  // 0 = free
    uint8_t count = 0;
  };

  void grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    size_t mask = slots_.size() - 1;
    for (const Slot& s : old) {
      if (s.len == 0) continue;
      size_t i = s.hash & mask;
      while (slots_[i].len != 0) i = (i + 1) & mask;
      slots_[i] = s;
    }
  }

  std::vector<Slot> slots_;
  std::vector<uint8_t> unit_bytes_;
  std::vector<uint16_t> symbols_;
  size_t used_ = 0;
  size_t free_slot_ = 0;
};

uint32_t hash_unit(const uint8_t* p, size_t len) {
  uint64_t h = 0x9e3779b97f4a7c15ull ^ len;
  while (len >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    h = (h ^ v) * 0xff51afd7ed558ccdull;
    h ^= h >> 32;
    p += 8;
    len -= 8;
  }
  uint64_t v = 0;
  std::memcpy(&v, p, len);
  h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
  return static_cast<uint32_t>(h >> 32);
}

}  // namespace

void Dictionary::tokenize(const uint8_t* data, size_t n, std::vector<uint16_t>* out) const {
  if (!impl_) {
    out->insert(out->end(), data, data + n);
    return;
  }
  const Impl& d = *impl_;
  UnitCache cache;
  std::vector<uint16_t> pieces;
  split_units(
      data, n, [&](uint16_t esc) { out->push_back(esc); },
      [&](const uint8_t* p, size_t len) {
        if (len == 1) {
          out->push_back(p[0]);
          return;
        }
        uint32_t h = hash_unit(p, len);
        size_t count = 0;
        if (const uint16_t* syms = cache.get(p, len, h, &count)) {
          out->insert(out->end(), syms, syms + count);
          return;
        }
        pieces.clear();
        d.segment(p, len, &pieces);
        cache.put(p, len, h, pieces.data(), pieces.size());
        out->insert(out->end(), pieces.begin(), pieces.end());
      });
}

// ---- detokenize ----

void Dictionary::detokenize(const uint16_t* symbols, size_t n, std::vector<uint8_t>* out,
                            size_t max_bytes) const {
  if (!impl_) {
    for (size_t i = 0; i < n; ++i) {
      if (symbols[i] >= 256) corrupt("symbol " + std::to_string(symbols[i]) + " out of range");
    }
    if (n > max_bytes) corrupt("symbols decode to more bytes than expected");
    out->insert(out->end(), symbols, symbols + n);
    return;
  }
  const Impl& d = *impl_;
  // First pass: validate and bound the output size, so that the second pass writes without checks.
  size_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    if (symbols[i] >= d.vocab) corrupt("symbol " + std::to_string(symbols[i]) + " out of range");
    total += d.length[symbols[i]];
  }
  if (total > max_bytes) corrupt("symbols decode to more bytes than expected");
  size_t base = out->size();
  out->resize(base + total + kCopyPad);
  uint8_t* dst = out->data() + base;
  const uint8_t* arena = d.bytes.data();

  uint16_t pending = 0;  // case escape waiting for the next word
  uint16_t active = 0;   // case escape applying to the current word
  for (size_t i = 0; i < n; ++i) {
    uint16_t s = symbols[i];
    uint8_t kind = d.kind[s];
    if (kind == kKindEscape) {
      pending = s;
      active = 0;  // an escape always starts a new word
      continue;
    }
    const uint8_t* src = arena + d.offset[s];
    size_t len = d.length[s];
    if (pending == 0 && (active == 0 || (active == kUpper && kind == kKindLetters))) {
      if (len <= kCopyPad) {
        std::memcpy(dst, src, kCopyPad);  // both buffers have kCopyPad bytes of slack
      } else {
        std::memcpy(dst, src, len);
      }
      if (active == kUpper) {
        for (size_t k = 0; k < len; ++k)
          dst[k] = static_cast<uint8_t>(dst[k] - 32 * (static_cast<uint8_t>(dst[k] - 'a') < 26));
      }
      dst += len;
      continue;
    }
    for (size_t k = 0; k < len; ++k) {
      uint8_t c = src[k];
      if (pending != 0) {
        active = pending;  // the word starts here, after its space if it has one
        pending = 0;
        if (c == ' ') {
          *dst++ = c;
          continue;
        }
      }
      if (active != 0) {
        if (static_cast<uint8_t>(c - 'a') < 26) c = static_cast<uint8_t>(c - 32);
        if (active == kCap || !is_letter(c)) active = 0;
      }
      *dst++ = c;
    }
  }
  out->resize(static_cast<size_t>(dst - out->data()));
}

// ---- serialization ----
//
// Layout: version byte, learnt symbol count (LEB128), then for a non-empty dictionary a 32-bit FNV-1a of
// the strings (little-endian) and the strings in sorted order, front-coded (length of the prefix shared
// with the previous string, suffix length, suffix bytes), with a binary arithmetic coder and adaptive
// bit models: prefix length alone, suffix length given the prefix length, bytes given the byte before.

namespace {

class BitModel {
 public:
  int p12() const {
    int p = p_ >> 4;
    return p < 1 ? 1 : p > 4095 ? 4095 : p;
  }
  void update(int bit) {
    if (bit) {
      p_ = static_cast<uint16_t>(p_ + ((65535 - p_) >> kRate));
    } else {
      p_ = static_cast<uint16_t>(p_ - (p_ >> kRate));
    }
  }

 private:
  static constexpr int kRate = 4;
  uint16_t p_ = 32768;  // P(bit = 1) in 1/65536
};

// Binary arithmetic coder (32-bit, carry-less: the interval shrinks until its top byte is settled).
class BitEncoder {
 public:
  explicit BitEncoder(std::vector<uint8_t>* out) : out_(out) {}
  void encode(int bit, BitModel* m) {
    uint32_t mid = x1_ + static_cast<uint32_t>((static_cast<uint64_t>(x2_ - x1_) * m->p12()) >> 12);
    if (bit) {
      x2_ = mid;
    } else {
      x1_ = mid + 1;
    }
    m->update(bit);
    while (((x1_ ^ x2_) & 0xff000000u) == 0) {
      out_->push_back(static_cast<uint8_t>(x2_ >> 24));
      x1_ <<= 8;
      x2_ = (x2_ << 8) | 255;
    }
  }
  void finish() {
    for (int i = 0; i < 4; ++i) out_->push_back(static_cast<uint8_t>(x1_ >> (24 - 8 * i)));
  }

 private:
  std::vector<uint8_t>* out_;
  uint32_t x1_ = 0, x2_ = 0xffffffffu;
};

class BitDecoder {
 public:
  BitDecoder(const uint8_t* p, size_t n) : p_(p), n_(n) {
    for (int i = 0; i < 4; ++i) x_ = (x_ << 8) | next();
  }
  int decode(BitModel* m) {
    uint32_t mid = x1_ + static_cast<uint32_t>((static_cast<uint64_t>(x2_ - x1_) * m->p12()) >> 12);
    int bit = x_ <= mid;
    if (bit) {
      x2_ = mid;
    } else {
      x1_ = mid + 1;
    }
    m->update(bit);
    while (((x1_ ^ x2_) & 0xff000000u) == 0) {
      x1_ <<= 8;
      x2_ = (x2_ << 8) | 255;
      x_ = (x_ << 8) | next();
    }
    return bit;
  }
  size_t consumed() const { return pos_; }  // may exceed the input size: reads past it give zeros
  // The encoder ends with the low end of its interval: anything else in the last bytes is damage.
  bool ended_cleanly() const { return x_ == x1_; }

 private:
  uint32_t next() { return pos_ < n_ ? p_[pos_++] : (++pos_, 0u); }

  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  uint32_t x1_ = 0, x2_ = 0xffffffffu, x_ = 0;
};

constexpr int kLenBits = 7;  // lengths and prefix lengths are in [0, 64]

// Models of the front-coded string list; the same code drives encoding and decoding.
struct StringModels {
  BitModel prefix[1 << kLenBits];
  BitModel suffix[16][1 << kLenBits];
  BitModel byte[257][256];  // context: previous byte, or 256 at the start of a string

  template <class Coder>
  static uint32_t code_tree(Coder& coder, BitModel* tree, int bits, uint32_t value) {
    uint32_t node = 1;
    for (int i = bits - 1; i >= 0; --i) {
      int bit = coder(static_cast<int>((value >> i) & 1), &tree[node]);
      node = (node << 1) | static_cast<uint32_t>(bit);
    }
    return node - (1u << bits);
  }
};

void put_varint(std::vector<uint8_t>* out, uint32_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<uint8_t>(v));
}

}  // namespace

std::vector<uint8_t> Dictionary::serialize() const {
  std::vector<uint8_t> out;
  out.push_back(kDictFormatVersion);
  int learnt = vocab_size() - (impl_ ? kFirstLearnt : 256);
  put_varint(&out, static_cast<uint32_t>(learnt));
  if (learnt == 0) return out;
  const Impl& d = *impl_;
  uint32_t check = 2166136261u;
  for (int id = kFirstLearnt; id < d.vocab; ++id) {
    check = fnv1a(check, &d.length[id], 1);
    check = fnv1a(check, d.bytes.data() + d.offset[id], d.length[id]);
  }
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(check >> (8 * i)));

  auto models = std::make_unique<StringModels>();
  BitEncoder enc(&out);
  auto coder = [&](int bit, BitModel* m) {
    enc.encode(bit, m);
    return bit;
  };
  const uint8_t* prev = nullptr;
  size_t prev_len = 0;
  for (int id = kFirstLearnt; id < d.vocab; ++id) {
    const uint8_t* s = d.bytes.data() + d.offset[id];
    size_t len = d.length[id];
    size_t lcp = 0;
    while (lcp < prev_len && lcp + 1 < len && s[lcp] == prev[lcp]) ++lcp;  // keep a suffix of >= 1 byte
    StringModels::code_tree(coder, models->prefix, kLenBits, static_cast<uint32_t>(lcp));
    StringModels::code_tree(coder, models->suffix[std::min<size_t>(lcp, 15)], kLenBits,
                            static_cast<uint32_t>(len - lcp));
    for (size_t i = lcp; i < len; ++i) {
      StringModels::code_tree(coder, models->byte[i == 0 ? 256 : s[i - 1]], 8, s[i]);
    }
    prev = s;
    prev_len = len;
  }
  enc.finish();
  return out;
}

Dictionary Dictionary::deserialize(const uint8_t* data, size_t size) {
  if (size < 2) corrupt("truncated");
  if (data[0] != kDictFormatVersion) corrupt("unknown version " + std::to_string(data[0]));
  uint32_t learnt = 0;
  size_t pos = 1;
  for (int shift = 0;; shift += 7) {
    if (pos >= size || shift > 14) corrupt("bad symbol count");
    uint8_t b = data[pos++];
    learnt |= static_cast<uint32_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) break;
  }
  if (learnt > static_cast<uint32_t>(kMaxVocab - kFirstLearnt)) corrupt("too many symbols");
  if (learnt == 0) {
    if (pos != size) corrupt("trailing bytes");
    return Dictionary();
  }
  if (size - pos < 4 + 4) corrupt("truncated");
  uint32_t check = 0;
  for (int i = 0; i < 4; ++i) check |= static_cast<uint32_t>(data[pos++]) << (8 * i);

  auto models = std::make_unique<StringModels>();
  BitDecoder dec(data + pos, size - pos);
  auto coder = [&](int, BitModel* m) { return dec.decode(m); };
  std::vector<std::vector<uint8_t>> strings(learnt);
  uint32_t h = 2166136261u;
  for (uint32_t k = 0; k < learnt; ++k) {
    size_t lcp = StringModels::code_tree(coder, models->prefix, kLenBits, 0);
    size_t suffix = StringModels::code_tree(coder, models->suffix[std::min<size_t>(lcp, 15)], kLenBits, 0);
    size_t prev_len = k == 0 ? 0 : strings[k - 1].size();
    if (lcp > prev_len || suffix == 0 || lcp + suffix < 2 || lcp + suffix > kMaxUnit) corrupt("bad string");
    std::vector<uint8_t>& s = strings[k];
    s.resize(lcp + suffix);
    if (lcp > 0) std::memcpy(s.data(), strings[k - 1].data(), lcp);
    for (size_t i = lcp; i < s.size(); ++i) {
      s[i] =
          static_cast<uint8_t>(StringModels::code_tree(coder, models->byte[i == 0 ? 256 : s[i - 1]], 8, 0));
    }
    if (k > 0 && !(strings[k - 1] < s)) corrupt("strings out of order");
    if (dec.consumed() > size - pos) corrupt("truncated");
    uint8_t len = static_cast<uint8_t>(s.size());
    h = fnv1a(h, &len, 1);
    h = fnv1a(h, s.data(), s.size());
  }
  if (dec.consumed() != size - pos || !dec.ended_cleanly()) corrupt("trailing bytes");
  if (h != check) corrupt("check value mismatch");
  return Dictionary(std::make_shared<const Impl>(strings));
}

}  // namespace nncpp
