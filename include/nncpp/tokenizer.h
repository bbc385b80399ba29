// Tokenizer: maps bytes to the symbols the model predicts (words and word pieces) and back.
//
// Pass 1, build_dictionary(), learns a dictionary from the input: the text is cut into units (a word is
// lowercased and keeps the space before it, if any; escape symbols mark "first capital" and "all
// capitals"), then pairs of symbols inside a unit are merged greedily by the bits they save (order-0 code
// lengths plus a cost per coded symbol) minus a fixed cost per new symbol, until the vocabulary target is
// reached or nothing pays any more. All decisions use integer arithmetic, so the same input gives the
// same dictionary bytes on every machine.
// Pass 2, Dictionary::tokenize(), maps any byte range to symbols on its own (no state between calls), and
// Dictionary::detokenize() maps them back exactly, for every byte sequence.
//
// Symbols of a non-empty dictionary: 0..255 are the bytes, 256 and 257 the escapes (first capital, all
// capitals), 258.. the learnt strings in lexicographic order. An empty dictionary means bytes only:
// symbols are the 256 byte values and tokenize/detokenize copy them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace nncpp {

struct TokenizerOptions {
  // Upper bound on the number of symbols (0 = bytes only). The API accepts up to 65536; the product uses
  // at most 16384. A value below 259 leaves no room for learnt symbols and also means bytes only.
  int max_vocab = 16384;
  // true: no dictionary for small inputs (< 32 KiB) or non-text inputs; at most 2 sqrt(n) learnt symbols
  // for n input bytes (about 4k at 4 MB, the full 16k from 64 MB on); min_freq 4 and symbol_cost_bits 16
  // unless set. false: aim for max_vocab, with min_freq 2 and no symbol cost unless set (`--vocab N`).
  bool adaptive = true;
  // A learnt symbol must occur at least this often in the input; 0 = the default of the mode.
  int min_freq = 0;
  // Fixed cost charged for each learnt symbol, in bits (storing it, the model learning it); 0 = the
  // default of the mode.
  int symbol_cost_bits = 0;
  // Inputs larger than this are sampled for building: 64 evenly spaced slices of max_sample / 64 bytes,
  // with min_freq and symbol_cost_bits scaled down in proportion. Building takes about 2 bytes of memory
  // per sampled byte (measured: 237 MB for a 128 MiB sample). At most 1 GiB (counts stay below 2^31).
  size_t max_sample = size_t{128} << 20;
};

// Immutable once built: all const methods may be called from several threads at once.
class Dictionary {
 public:
  Dictionary();  // empty: bytes only

  bool empty() const;      // true = bytes only (the caller codes raw bytes with 256 symbols)
  int vocab_size() const;  // number of distinct symbols the model must predict (256 when empty)

  // Compact deterministic form (front-coded sorted strings, arithmetic coded, with a 32-bit check).
  // An empty dictionary serializes to 2 bytes.
  std::vector<uint8_t> serialize() const;
  // Throws nncpp::Error(ErrorCode::kCorrupt) on any malformed input; bounded time and memory.
  static Dictionary deserialize(const uint8_t* data, size_t size);

  // Appends the symbols of data[0, n) to *out. Exact for any byte range taken on its own. Appends at
  // most 2 n symbols (each symbol covers a byte, or is a case escape before a word of at least one letter).
  void tokenize(const uint8_t* data, size_t n, std::vector<uint16_t>* out) const;
  // Appends the bytes of symbols[0, n) to *out. Throws kCorrupt for a symbol >= vocab_size().
  // max_bytes bounds the output (kCorrupt beyond it) before anything is allocated, so a hostile symbol
  // stream cannot make the decoder allocate 64 bytes per symbol.
  void detokenize(const uint16_t* symbols, size_t n, std::vector<uint8_t>* out,
                  size_t max_bytes = SIZE_MAX) const;

  // The byte string of a symbol: one byte for 0..255, empty for the escapes, the learnt string above.
  std::vector<uint8_t> symbol_bytes(int id) const;

  // A dictionary of the given learnt strings (2..64 bytes each, any order, no duplicates); no strings
  // gives the empty dictionary. Throws kCorrupt if a string breaks these rules or there are too many.
  static Dictionary from_strings(std::vector<std::vector<uint8_t>> strings);

 private:
  struct Impl;
  explicit Dictionary(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;  // immutable, shared by copies; null = empty
};

// Builds the dictionary from data[0, n) (sampled above options.max_sample bytes). Deterministic: the same
// bytes and options give the same dictionary. Throws Error(kUsage) for an option out of range.
Dictionary build_dictionary(const uint8_t* data, size_t n, const TokenizerOptions& options = {});

}  // namespace nncpp
