// libFuzzer target for the tokenizer. From each input it checks:
//   - tokenize/detokenize round trip with a fixed text dictionary and with a dictionary built from the
//     input itself (forced mode, so even binary inputs get one);
//   - the built dictionary survives serialize/deserialize unchanged;
//   - deserialize() of the raw input either throws kCorrupt or gives a dictionary that round-trips;
//   - detokenize() of the input read as symbols never crashes and only throws kCorrupt.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "nncpp/error.h"
#include "nncpp/tokenizer.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void check_round_trip(const nncpp::Dictionary& dict, const uint8_t* data, size_t size) {
  std::vector<uint16_t> symbols;
  dict.tokenize(data, size, &symbols);
  check(symbols.size() <= 2 * size);
  for (uint16_t s : symbols) check(s < dict.vocab_size());
  std::vector<uint8_t> back;
  dict.detokenize(symbols.data(), symbols.size(), &back);
  check(back.size() == size && (size == 0 || std::memcmp(back.data(), data, size) == 0));
}

const nncpp::Dictionary& text_dictionary() {
  static const nncpp::Dictionary dict = [] {
    std::string text;
    const char* words[] = {"The ", "quick ", "brown ", "FOX ",      "jumps ",       "over ",
                           "the ", "lazy ",  "dog. ",  "McDonald ", "HTMLElement ", "caf\xc3\xa9 ",
                           "<b>",  "</b>",   "1999, ", "\n"};
    for (int i = 0; text.size() < 100000; ++i) text += words[(i * 7 + i / 3) % 16];
    nncpp::TokenizerOptions o;
    o.adaptive = false;
    o.max_vocab = 600;
    return nncpp::build_dictionary(reinterpret_cast<const uint8_t*>(text.data()), text.size(), o);
  }();
  return dict;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  check_round_trip(text_dictionary(), data, size);

  nncpp::TokenizerOptions o;
  o.adaptive = false;
  o.max_vocab = 258 + (size > 0 ? data[0] : 0) * 4;
  nncpp::Dictionary built = nncpp::build_dictionary(data, size, o);
  check(built.vocab_size() <= 65536 && (built.empty() || built.vocab_size() <= o.max_vocab));
  check_round_trip(built, data, size);
  std::vector<uint8_t> bytes = built.serialize();
  nncpp::Dictionary reloaded = nncpp::Dictionary::deserialize(bytes.data(), bytes.size());
  check(reloaded.serialize() == bytes);
  if (size > 0) check_round_trip(built, data + size / 2, size - size / 2);  // any range on its own

  try {
    nncpp::Dictionary parsed = nncpp::Dictionary::deserialize(data, size);
    check_round_trip(parsed, data, size);
    check(nncpp::Dictionary::deserialize(parsed.serialize().data(), parsed.serialize().size()).vocab_size() ==
          parsed.vocab_size());
  } catch (const nncpp::Error& e) {
    check(e.code() == nncpp::ErrorCode::kCorrupt);
  }

  std::vector<uint16_t> symbols(size / 2);
  if (!symbols.empty()) std::memcpy(symbols.data(), data, symbols.size() * 2);
  const nncpp::Dictionary* dicts[] = {&text_dictionary(), &built};
  for (const nncpp::Dictionary* d : dicts) {
    std::vector<uint8_t> out;
    try {
      d->detokenize(symbols.data(), symbols.size(), &out);
    } catch (const nncpp::Error& e) {
      check(e.code() == nncpp::ErrorCode::kCorrupt);
    }
    for (uint16_t& s : symbols) s = static_cast<uint16_t>(s % d->vocab_size());
    out.clear();
    d->detokenize(symbols.data(), symbols.size(), &out);  // all in range: must not throw
  }
  return 0;
}
