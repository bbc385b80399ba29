// Internals shared by the tokenizer sources: the symbol layout and the cutting of bytes into units.
//
// A unit is the span inside which symbols may merge. The input is cut into:
//   - words: a maximal run of letters of one case shape (lower*, Upper lower*, UPPER UPPER+), where a
//     letter is A-Z, a-z or any byte >= 0x80 (so UTF-8 text keeps its words whole). A word is stored in
//     lower case, with the space before it when there is one (" the", or "the" after "[[" or a newline).
//     An escape before it gives the case shape it lost: kCap, kUpper. Mixed case becomes several words:
//     "McDonald" = "Mc" "Donald", "iPhone" = "i" "Phone", and an all-capitals run followed by lower case
//     gives its last capital to the next word: "HTMLElement" = "HTML" "Element".
//   - other runs: maximal runs of non-letters (punctuation, white space, control bytes), except a space
//     directly before a letter, which belongs to the word. Markup stays in the run: entities ("&quot;")
//     and tag names ("</title", "&lt;ref"), so that "&lt;ref&gt;" can become one symbol (8-10% fewer
//     symbols on Wikipedia XML, and a better adaptive order-2 code length).
//   - digit runs, apart from the punctuation around them: slightly more symbols (1.5% on Wikipedia XML,
//     6% on world192.txt) but a better adaptive order-2 code length and a smaller dictionary, since
//     ", 19" and "1999)" no longer need symbols of their own. Cutting numbers into 1 or 3 digits was worse.
// Units longer than kMaxUnit bytes are cut into pieces of kMaxUnit bytes; a cut word continues with
// letter-only pieces, which the decoder treats as the same word.
//
// With these rules a word directly follows another word only when a case escape stands between them, so
// the decoder always knows where an all-capitals word ends: at an escape or at a non-letter byte.
// NNCP instead writes every word with a leading space plus a "no space" escape when the original had
// none; keeping the two forms apart removes those escapes (15% of all symbols on Wikipedia XML at 16k)
// and gives 11-14% fewer symbols and a better adaptive order-2 code length on that file.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nncpp {
namespace tokenizer_detail {

enum : uint16_t {
  kCap = 256,    // the next word starts with a capital, the rest is lower case
  kUpper = 257,  // the next word is all capitals (two or more letters)
  kFirstLearnt = 258,
};

constexpr size_t kMaxUnit = 64;        // longest unit, hence longest learnt symbol, in bytes
constexpr int kMaxVocab = 65536;       // symbols are uint16_t
constexpr int kDictFormatVersion = 1;  // first byte of a serialized dictionary

inline bool is_upper(uint8_t c) {
  return static_cast<uint8_t>(c - 'A') < 26;
}
inline bool is_lower(uint8_t c) {
  return static_cast<uint8_t>(c - 'a') < 26 || c >= 0x80;
}
inline bool is_letter(uint8_t c) {
  return is_lower(c) || is_upper(c);
}
inline bool is_digit(uint8_t c) {
  return static_cast<uint8_t>(c - '0') < 10;
}
inline bool is_ascii_alnum(uint8_t c) {
  return static_cast<uint8_t>((c | 0x20) - 'a') < 26 || static_cast<uint8_t>(c - '0') < 10;
}

// Markup kept whole inside a run of non-letters: an entity ("&quot;", "&#160;") and the name of a tag
// after "<", "</", "&lt;" or "&lt;/" ("<title", "&lt;/ref"). Returns the end of the markup starting at
// data[i], or i when there is none.
inline size_t markup_end(const uint8_t* data, size_t i, size_t n) {
  size_t e = i;
  if (data[i] == '&') {
    size_t k = i + 1;
    while (k < n && k - i <= 10 && (is_ascii_alnum(data[k]) || data[k] == '#')) ++k;
    if (k == i + 1 || k >= n || data[k] != ';') return i;
    e = k + 1;
    if (e - i != 4 || data[i + 1] != 'l' || data[i + 2] != 't') return e;  // not "&lt;": no tag name
  } else if (data[i] == '<') {
    e = i + 1;
  } else {
    return i;
  }
  size_t name = e < n && data[e] == '/' ? e + 1 : e;
  if (name >= n || data[name] >= 0x80 || !is_letter(data[name])) return e;
  while (name < n && name - e < 32 && is_ascii_alnum(data[name])) ++name;
  return name;
}

// Cuts data[0, n) into escapes and units: calls on_escape(uint16_t symbol) and
// on_unit(const uint8_t* bytes, size_t len) in stream order. len is in [1, kMaxUnit]. Word units are
// passed lowercased from a local buffer.
template <class OnEscape, class OnUnit>
void split_units(const uint8_t* data, size_t n, OnEscape&& on_escape, OnUnit&& on_unit) {
  uint8_t word[kMaxUnit];
  bool space = false;  // the space before the word at i was cut off the run before it
  size_t i = 0;
  while (i < n) {
    if (!is_letter(data[i])) {
      // A run of non-letters, cut where digits start or stop ("1999" apart from ", " around it).
      auto emit = [&](size_t from, size_t to) {
        for (size_t k = from; k < to; k += kMaxUnit) on_unit(data + k, to - k < kMaxUnit ? to - k : kMaxUnit);
      };
      size_t unit = i;
      bool digits = is_digit(data[i]);
      size_t j = i;
      while (j < n && !is_letter(data[j])) {
        size_t m = markup_end(data, j, n);
        bool digit = m == j && is_digit(data[j]);
        if (digit != digits) {
          emit(unit, j);
          unit = j;
          digits = digit;
        }
        j = m > j ? m : j + 1;
      }
      size_t end = j;
      if (j < n && data[j - 1] == ' ') {
        --end;
        space = true;
      }
      emit(unit, end);
      i = j;
      continue;
    }
    size_t j = i + 1;
    uint16_t shape = 0;
    if (is_upper(data[i]) && j < n && is_upper(data[j])) {
      while (j < n && is_upper(data[j])) ++j;
      if (j < n && is_lower(data[j])) --j;  // "HTMLElement": the last capital starts the next word
      shape = j - i >= 2 ? kUpper : kCap;
    } else {
      if (is_upper(data[i])) shape = kCap;
      while (j < n && is_lower(data[j])) ++j;
    }
    if (shape != 0) on_escape(shape);
    size_t len = 0;
    if (space) word[len++] = ' ';
    space = false;
    for (size_t k = i; k < j; ++k) {
      if (len == kMaxUnit) {
        on_unit(word, len);
        len = 0;
      }
      uint8_t c = data[k];
      word[len++] = is_upper(c) ? static_cast<uint8_t>(c | 0x20) : c;
    }
    on_unit(word, len);
    i = j;
  }
}

// True when data looks like text: few control bytes other than white space. Non-text inputs get no
// dictionary in adaptive mode (the escapes and word model make no sense there).
bool looks_like_text(const uint8_t* data, size_t n);

}  // namespace tokenizer_detail
}  // namespace nncpp
