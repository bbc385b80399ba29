// Tokenizer: exact round trips on random and adversarial inputs, block independence, dictionary
// serialization and its rejection of malformed input, deterministic building, adaptive vocabulary.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "nncpp/error.h"
#include "nncpp/tokenizer.h"

namespace nncpp {
namespace {

std::vector<uint8_t> bytes_of(const std::string& s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

// Synthetic English-like text: Zipf-ish words, all three case shapes, mixed case, punctuation, digits,
// markup, UTF-8 and a few Latin-1 bytes.
std::vector<uint8_t> make_text(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::string> words;
  const char* stems[] = {"the",    "of",      "and",   "to",     "in",      "compress", "model",
                         "symbol", "predict", "word",  "neural", "network", "byte",     "stream",
                         "range",  "coder",   "token", "text",   "data",    "is"};
  const char* endings[] = {"", "s", "ed", "ing", "er", "ly", "ion", "al"};
  for (const char* s : stems) {
    for (const char* e : endings) words.push_back(std::string(s) + e);
  }
  std::string out;
  while (out.size() < size) {
    uint32_t r = rng() % 1000;
    std::string w = words[(rng() % words.size()) * (rng() % words.size()) / words.size()];
    if (r < 120) {
      w[0] = static_cast<char>(w[0] - 32);
    } else if (r < 150) {
      for (char& c : w) c = static_cast<char>(c - 32);
    } else if (r < 160 && w.size() > 2) {
      w[w.size() / 2] = static_cast<char>(w[w.size() / 2] - 32);  // mixed case
    }
    out += w;
    r = rng() % 100;
    if (r < 70) {
      out += ' ';
    } else if (r < 78) {
      out += ", ";
    } else if (r < 84) {
      out += ".\n";
    } else if (r < 88) {
      out += " " + std::to_string(rng() % 3000) + " ";
    } else if (r < 92) {
      out += "<b>";
    } else if (r < 95) {
      out += " caf\xc3\xa9 ";
    } else if (r < 97) {
      out += "  ";
    } else if (r < 98) {
      out += "\xe9t\xe9 ";  // Latin-1
    } else {
      out += "\n\n";
    }
  }
  out.resize(size);
  return bytes_of(out);
}

const Dictionary& text_dictionary() {
  static const Dictionary dict = [] {
    std::vector<uint8_t> text = make_text(300000, 1);
    return build_dictionary(text.data(), text.size());
  }();
  return dict;
}

void expect_round_trip(const Dictionary& dict, const std::vector<uint8_t>& data) {
  std::vector<uint16_t> symbols;
  dict.tokenize(data.data(), data.size(), &symbols);
  ASSERT_LE(symbols.size(), 2 * data.size());
  for (uint16_t s : symbols) ASSERT_LT(s, dict.vocab_size());
  std::vector<uint8_t> back;
  dict.detokenize(symbols.data(), symbols.size(), &back);
  ASSERT_EQ(back.size(), data.size());
  ASSERT_TRUE(back == data);
}

std::vector<uint8_t> random_bytes(size_t n, std::mt19937* rng, int alphabet = 256) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>((*rng)() % alphabet);
  return v;
}

TEST(Tokenizer, EmptyDictionaryIsBytes) {
  Dictionary dict;
  EXPECT_TRUE(dict.empty());
  EXPECT_EQ(dict.vocab_size(), 256);
  std::vector<uint8_t> data = bytes_of("Hello, World\x00\xff");
  std::vector<uint16_t> symbols;
  dict.tokenize(data.data(), data.size(), &symbols);
  ASSERT_EQ(symbols.size(), data.size());
  for (size_t i = 0; i < data.size(); ++i) EXPECT_EQ(symbols[i], data[i]);
  expect_round_trip(dict, data);
  uint16_t bad = 256;
  std::vector<uint8_t> out;
  EXPECT_THROW(dict.detokenize(&bad, 1, &out), Error);
}

TEST(Tokenizer, BuildsADictionaryForText) {
  const Dictionary& dict = text_dictionary();
  ASSERT_FALSE(dict.empty());
  EXPECT_GT(dict.vocab_size(), 258 + 16);
  EXPECT_LE(dict.vocab_size(), 16384);
  // Frequent words become single symbols.
  std::vector<uint8_t> text = bytes_of("the model");
  std::vector<uint16_t> symbols;
  dict.tokenize(text.data(), text.size(), &symbols);
  EXPECT_EQ(symbols.size(), 2u);  // "the", " model"
}

TEST(Tokenizer, RoundTripText) {
  for (uint32_t seed = 2; seed < 6; ++seed) expect_round_trip(text_dictionary(), make_text(50000, seed));
}

TEST(Tokenizer, RoundTripRandomBytes) {
  std::mt19937 rng(7);
  for (int alphabet : {2, 3, 16, 64, 128, 256}) {
    for (size_t n : {0, 1, 2, 3, 17, 1000, 20000})
      expect_round_trip(text_dictionary(), random_bytes(n, &rng, alphabet));
  }
}

TEST(Tokenizer, RoundTripRandomTextLikeBytes) {
  // Bytes drawn from letters of both cases, spaces and a little punctuation exercise the case and space
  // escapes in every combination.
  std::mt19937 rng(8);
  const std::string alphabet = "aAbBzZ  .\n\xc3\xa9\x01";
  for (int i = 0; i < 200; ++i) {
    std::vector<uint8_t> v(rng() % 300);
    for (auto& b : v) b = static_cast<uint8_t>(alphabet[rng() % alphabet.size()]);
    expect_round_trip(text_dictionary(), v);
  }
}

TEST(Tokenizer, RoundTripAdversarial) {
  const Dictionary& dict = text_dictionary();
  std::vector<std::string> cases = {
      "",
      " ",
      "  ",
      "a",
      "A",
      " A",
      "AB",
      "Ab",
      "aB",
      "ABc",
      "McDonald",
      "iPhone",
      "HTMLElement",
      "HTMLe",
      "ABc",
      "COL\xc3\x89",
      "CO\xc3\x89x",
      "aBCd EFgh IJ",
      "THE MODEL",
      "The Model.",
      "tHE",
      "x ",
      " x",
      "\n The",
      "A.B.C.",
      "I",
      "I I I",
      "caf\xc3\xa9 CAF\xc3\x89",
      "\xc3\xa9T\xc3\xa9",
      "\xff\xfe\x80 \x80",
      std::string(200, 'a'),
      std::string(200, 'A'),
      "X" + std::string(200, 'y'),
      " " + std::string(63, 'q') + "Q",
      std::string(64, 'W') + "w",
      std::string(300, ' '),
      std::string(100, ' ') + "word",
      "word" + std::string(100, ' '),
      "1999, 2000; 3.14159 -42",
      "1999,2000",
      "&quot;Hello&quot; &amp; &#160; &#x263A; &lt;ref name=x&gt;A&lt;/ref&gt; &lt;BR/&gt;",
      "&",
      "&;",
      "&a",
      "&ab;",
      "&lt;",
      "&lt;/",
      "&lt;/r",
      "<",
      "</",
      "</a",
      "<a",
      "<A",
      "<1",
      "&#",
      "&#1",
      "x&quot;Y",
      "ABC&quot;def",
      "<TITLE>Title</TITLE>",
      std::string(40, '<') + std::string(40, 'a'),
      "&" + std::string(20, 'a') + ";",
      "<" + std::string(40, 'b') + "c>",
      "<page><title>The Title</title></page>",
  };
  for (int b = 0; b < 259 + 3; ++b) {
    std::string s;
    s += static_cast<char>(b & 0xff);
    s += "The";
    s += static_cast<char>(b & 0xff);
    cases.push_back(s);
  }
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  cases.push_back(all);
  cases.push_back(std::string("\0\0\0", 3));
  for (const std::string& s : cases) {
    SCOPED_TRACE(s);
    expect_round_trip(dict, bytes_of(s));
  }
}

TEST(Tokenizer, AnyByteRangeOnItsOwn) {
  // The engine tokenizes blocks independently: every cut of the input must round-trip on its own.
  const Dictionary& dict = text_dictionary();
  std::vector<uint8_t> text = make_text(4000, 9);
  std::mt19937 rng(10);
  for (int i = 0; i < 300; ++i) {
    size_t a = rng() % text.size(), b = rng() % text.size();
    if (a > b) std::swap(a, b);
    expect_round_trip(dict, std::vector<uint8_t>(text.begin() + a, text.begin() + b));
  }
}

TEST(Tokenizer, TokenizeAndDetokenizeAppend) {
  const Dictionary& dict = text_dictionary();
  std::vector<uint8_t> a = bytes_of("The first block"), b = bytes_of(" and THE second");
  std::vector<uint16_t> symbols = {7};
  dict.tokenize(a.data(), a.size(), &symbols);
  size_t cut = symbols.size();
  dict.tokenize(b.data(), b.size(), &symbols);
  EXPECT_EQ(symbols[0], 7);
  std::vector<uint8_t> out = {'x'};
  dict.detokenize(symbols.data() + 1, cut - 1, &out);
  dict.detokenize(symbols.data() + cut, symbols.size() - cut, &out);
  EXPECT_EQ(std::string(out.begin(), out.end()), "xThe first block and THE second");
}

TEST(Tokenizer, DetokenizeRejectsOutOfRangeAndSurvivesGarbage) {
  const Dictionary& dict = text_dictionary();
  std::vector<uint8_t> out;
  uint16_t bad = static_cast<uint16_t>(dict.vocab_size());
  try {
    dict.detokenize(&bad, 1, &out);
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorrupt);
  }
  EXPECT_TRUE(out.empty());
  // Any in-range symbol sequence decodes to something, without crashing.
  std::mt19937 rng(11);
  for (int i = 0; i < 200; ++i) {
    std::vector<uint16_t> s(rng() % 100);
    for (auto& x : s) x = static_cast<uint16_t>(rng() % 8 == 0 ? 256 + rng() % 3 : rng() % dict.vocab_size());
    out.clear();
    dict.detokenize(s.data(), s.size(), &out);
  }
}

TEST(Tokenizer, SerializationRoundTrip) {
  const Dictionary& dict = text_dictionary();
  std::vector<uint8_t> bytes = dict.serialize();
  Dictionary back = Dictionary::deserialize(bytes.data(), bytes.size());
  EXPECT_EQ(back.vocab_size(), dict.vocab_size());
  EXPECT_EQ(back.serialize(), bytes);
  for (int id = 0; id < dict.vocab_size(); ++id) ASSERT_EQ(back.symbol_bytes(id), dict.symbol_bytes(id));
  std::vector<uint8_t> text = make_text(20000, 12);
  std::vector<uint16_t> s1, s2;
  dict.tokenize(text.data(), text.size(), &s1);
  back.tokenize(text.data(), text.size(), &s2);
  EXPECT_EQ(s1, s2);
  // Compact: well under the raw strings' size.
  size_t raw = 0;
  for (int id = 258; id < dict.vocab_size(); ++id) raw += dict.symbol_bytes(id).size() + 1;
  EXPECT_LT(bytes.size(), raw / 2);

  Dictionary empty;
  std::vector<uint8_t> e = empty.serialize();
  EXPECT_EQ(e.size(), 2u);
  EXPECT_TRUE(Dictionary::deserialize(e.data(), e.size()).empty());
}

TEST(Tokenizer, FromStrings) {
  Dictionary d = Dictionary::from_strings({bytes_of(" the"), bytes_of("ab"), bytes_of(" a")});
  EXPECT_EQ(d.vocab_size(), 261);
  EXPECT_EQ(d.symbol_bytes(258), bytes_of(" a"));  // sorted
  EXPECT_EQ(d.symbol_bytes(260), bytes_of("ab"));
  EXPECT_TRUE(d.symbol_bytes(256).empty());
  EXPECT_EQ(d.symbol_bytes('x'), bytes_of("x"));
  std::vector<uint8_t> text = bytes_of("the cab The");
  std::vector<uint16_t> s;
  d.tokenize(text.data(), text.size(), &s);
  // "the" (no space before it) has no learnt piece; " cab" is cut into the fewest pieces; "The" is the
  // first-capital escape then " the".
  std::vector<uint16_t> expected = {'t', 'h', 'e', ' ', 'c', 260, 256, 259};
  EXPECT_EQ(s, expected);
  EXPECT_THROW(Dictionary::from_strings({bytes_of("x")}), Error);
  EXPECT_THROW(Dictionary::from_strings({bytes_of("xy"), bytes_of("xy")}), Error);
  EXPECT_THROW(Dictionary::from_strings({std::vector<uint8_t>(65, 'a')}), Error);
  EXPECT_TRUE(Dictionary::from_strings({}).empty());
}

TEST(Tokenizer, DeserializeRejectsMalformed) {
  std::vector<uint8_t> good = text_dictionary().serialize();
  auto expect_corrupt = [](const std::vector<uint8_t>& v) {
    try {
      Dictionary::deserialize(v.data(), v.size());
      return false;
    } catch (const Error& e) {
      return e.code() == ErrorCode::kCorrupt;
    }
  };
  for (size_t len = 0; len < good.size(); len += (len < 64 ? 1 : 97)) {
    EXPECT_TRUE(expect_corrupt(std::vector<uint8_t>(good.begin(), good.begin() + len))) << len;
  }
  std::vector<uint8_t> longer = good;
  longer.push_back(0);
  EXPECT_TRUE(expect_corrupt(longer));
  std::mt19937 rng(13);
  for (int i = 0; i < 300; ++i) {
    std::vector<uint8_t> v = good;
    v[rng() % v.size()] ^= static_cast<uint8_t>(1 << (rng() % 8));
    EXPECT_TRUE(expect_corrupt(v)) << i;
  }
  EXPECT_TRUE(expect_corrupt({2, 0}));                 // unknown version
  EXPECT_TRUE(expect_corrupt({1, 0xff, 0xff, 0x7f}));  // too many symbols
  EXPECT_TRUE(expect_corrupt({1, 0, 0}));              // trailing byte
  // Random garbage never crashes.
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint8_t> v = random_bytes(rng() % 64, &rng);
    if (!v.empty()) v[0] = 1;
    try {
      Dictionary::deserialize(v.data(), v.size());
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorrupt);
    }
  }
}

TEST(Tokenizer, SampledBuild) {
  // Inputs above max_sample are built from 64 slices; the result is deterministic and round-trips.
  std::vector<uint8_t> text = make_text(1 << 20, 18);
  TokenizerOptions o;
  o.max_sample = 64 << 10;
  Dictionary a = build_dictionary(text.data(), text.size(), o);
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a.serialize(), build_dictionary(text.data(), text.size(), o).serialize());
  EXPECT_NE(a.serialize(), build_dictionary(text.data(), text.size()).serialize());
  expect_round_trip(a, text);
  o.max_sample = 63;
  EXPECT_THROW(build_dictionary(text.data(), text.size(), o), Error);
}

TEST(Tokenizer, BuildIsDeterministic) {
  std::vector<uint8_t> text = make_text(200000, 14);
  std::vector<uint8_t> copy = text;
  std::vector<uint8_t> a = build_dictionary(text.data(), text.size()).serialize();
  std::vector<uint8_t> b = build_dictionary(copy.data(), copy.size()).serialize();
  EXPECT_EQ(a, b);
  TokenizerOptions fixed;
  fixed.adaptive = false;
  fixed.max_vocab = 1000;
  EXPECT_EQ(build_dictionary(text.data(), text.size(), fixed).serialize(),
            build_dictionary(copy.data(), copy.size(), fixed).serialize());
}

TEST(Tokenizer, VocabularyAdapts) {
  std::mt19937 rng(15);
  std::vector<uint8_t> text = make_text(200000, 16);
  // Small inputs, binary inputs, --vocab 0: bytes only.
  EXPECT_TRUE(build_dictionary(text.data(), 4000).empty());
  std::vector<uint8_t> binary = random_bytes(200000, &rng);
  EXPECT_TRUE(build_dictionary(binary.data(), binary.size()).empty());
  TokenizerOptions none;
  none.max_vocab = 0;
  EXPECT_TRUE(build_dictionary(text.data(), text.size(), none).empty());
  none.max_vocab = 258;
  EXPECT_TRUE(build_dictionary(text.data(), text.size(), none).empty());
  EXPECT_TRUE(build_dictionary(nullptr, 0).empty());
  // An explicit bound is respected, in either mode.
  for (bool adaptive : {true, false}) {
    TokenizerOptions o;
    o.adaptive = adaptive;
    o.max_vocab = 300;
    Dictionary d = build_dictionary(text.data(), text.size(), o);
    EXPECT_FALSE(d.empty());
    EXPECT_LE(d.vocab_size(), 300);
    expect_round_trip(d, text);
  }
  // Forced mode builds a dictionary even for binary data, and it still round-trips.
  TokenizerOptions forced;
  forced.adaptive = false;
  forced.max_vocab = 2000;
  Dictionary d = build_dictionary(binary.data(), binary.size(), forced);
  EXPECT_LE(d.vocab_size(), 2000);
  expect_round_trip(d, binary);
  // A bigger text gets at least as many symbols.
  std::vector<uint8_t> big = make_text(800000, 17);
  EXPECT_GE(build_dictionary(big.data(), big.size()).vocab_size(),
            build_dictionary(text.data(), text.size()).vocab_size());
  TokenizerOptions bad;
  bad.max_vocab = 65537;
  EXPECT_THROW(build_dictionary(text.data(), text.size(), bad), Error);
}

}  // namespace
}  // namespace nncpp
