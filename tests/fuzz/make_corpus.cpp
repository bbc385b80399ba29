// Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/), small valid inputs that lead
// the fuzzers and the CTest smoke runs past the first checks:
//
//   build/tests/fuzz/fuzz_make_corpus tests/fuzz/corpus
//
// fuzz_container's seeds are an option byte plus nncpp files made with the counting predictor
// (tests/support/count_predictor.h): rerun this when the format, the engine or that predictor changes (the
// smoke run fails when no seed decodes any more).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "nncpp/engine.h"
#include "core/quantize.h"
#include "core/range_coder.h"
#include "support/count_predictor.h"

namespace {

namespace fs = std::filesystem;

void write(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
  std::printf("%s: %zu bytes\n", path.c_str(), bytes.size());
}

std::string text(size_t n, uint64_t seed) {
  static const char* words[] = {"The ",     "arithmetic ", "coder ", "is ",      "superior ", "to ",
                                "Huffman ", "coding, ",    "and ",   "HTML <b>", "</b> ",     "1952.\n"};
  std::mt19937_64 g(seed);
  std::string s;
  while (s.size() < n) s += words[g() % (sizeof words / sizeof *words)];
  s.resize(n);
  return s;
}

std::string binary(size_t n, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(g() % 7 == 0 ? g() : g() % 4);  // skewed: compressible
  return s;
}

nncpp::Settings settings(uint32_t block_bytes, uint32_t match_order) {
  nncpp::Settings s;
  s.model.streams = 4;
  s.model.segment = 7;
  s.codec.block_bytes = block_bytes;
  s.codec.min_stream_symbols = 64;
  s.codec.match_order = match_order;
  s.codec.match_hash_bits = 12;
  return s;
}

// option byte + the file: bit 0 repairs CRCs, bit 1 ignores the fingerprint (fuzz_container.cpp).
std::string container_seed(uint8_t options, const std::string& data, const nncpp::Settings& s,
                           bool size_known, int max_vocab = 0, const std::string& version = "1") {
  nncpp::test_support::TestBackend backend(version);
  std::istringstream in(data);
  std::ostringstream out;
  nncpp::CompressJob job;
  job.settings = s;
  job.backend = &backend;
  job.size_hint = size_known ? data.size() : nncpp::kUnknownSize;
  job.tokenizer.max_vocab = max_vocab;
  job.tokenizer.adaptive = false;
  nncpp::compress(in, out, job);
  return std::string(1, static_cast<char>(options)) + out.str();
}

// An input for fuzz_range_decoder whose payload is a real coded stream for its own tables.
std::string range_seed(uint8_t table_mode, uint32_t vocab, size_t count, uint64_t seed) {
  std::string in;
  auto u8 = [&](uint32_t v) { in += static_cast<char>(v); };
  auto u32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) u8(v >> (8 * i));
  };
  std::mt19937_64 g(seed);
  u8(0);  // one table
  u8(table_mode);
  u32(vocab - 1);  // vocab = 1 + v % 300
  std::vector<float> p(vocab);
  for (uint32_t i = 0; i < vocab; ++i) {
    const uint32_t e = static_cast<uint32_t>(g() % 12);
    u8(e);  // mode 1: p_i = 2^-e
    p[i] = std::ldexp(1.0f, -static_cast<int>(e));
  }
  std::vector<uint32_t> cum(vocab + 1);
  nncpp::quantize(p.data(), static_cast<int>(vocab), cum.data());
  u8(static_cast<uint32_t>(count / 16));
  u8(static_cast<uint32_t>(count % 16));
  nncpp::RangeEncoder enc;
  std::vector<uint32_t> symbols(count);
  for (uint32_t& s : symbols) {
    // Draw from the table itself, so that the stream is typical.
    s = nncpp::find_symbol(cum.data(), static_cast<int>(vocab),
                           static_cast<uint32_t>(g() % nncpp::kFreqTotal));
    u8(s);
    u8(0);
  }
  for (uint32_t s : symbols) enc.encode(cum[s], cum[s + 1] - cum[s]);
  enc.finish();
  for (uint8_t b : enc.bytes()) u8(b);
  return in;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_ROOT (tests/fuzz/corpus)\n", argv[0]);
    return 2;
  }
  const fs::path root = argv[1];

  const fs::path c = root / "fuzz_container";
  write(c / "empty.bin", container_seed(0, "", settings(1024, 0), true));
  write(c / "text-match.bin", container_seed(1, text(700, 1), settings(1024, 3), true));
  write(c / "binary-3-blocks-streamed.bin", container_seed(0, binary(2300, 2), settings(1024, 0), false));
  write(c / "text-dictionary.bin", container_seed(1, text(2500, 3), settings(4096, 2), true, 300));
  write(c / "other-fingerprint.bin", container_seed(2, text(300, 4), settings(1024, 0), true, 0, "2"));

  const fs::path r = root / "fuzz_range_decoder";
  write(r / "zeros.bin", std::string(64, '\0'));
  write(r / "coded-16.bin", range_seed(1, 16, 200, 5));
  write(r / "coded-250.bin", range_seed(1, 250, 120, 6));
  write(r / "random.bin", binary(300, 7));

  const fs::path t = root / "fuzz_tokenizer";
  write(t / "text.txt", text(1500, 8));
  write(t / "caps.txt", "The QUICK Brown fox; McDonald's HTMLElement caf\xc3\xa9 NAÏVE 1999-2024\n");
  write(t / "binary.bin", binary(400, 9));
  return 0;
}
