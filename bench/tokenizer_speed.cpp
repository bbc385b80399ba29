// tokenizer_speed FILE [max_vocab]: speed and quality proxies of the tokenizer on one file.
// Without max_vocab the adaptive default is used; with it, the vocabulary target is forced (`--vocab N`).
// Prints build / tokenize / detokenize speed, the vocabulary, symbols, bytes per symbol, dictionary bytes,
// and the order-0 entropy of the symbol stream in bits per input byte (a quick quality proxy), next to the
// order-0 entropy of the raw bytes, and an adaptive order-2 code length of both (inputs up to 64 MiB), a
// proxy that also charges for learning rare symbols. Tokenizing is done in 4 MiB blocks, as the engine does.
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <unordered_map>
#include <vector>

#include "nncpp/error.h"
#include "nncpp/tokenizer.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <class T>
double order0_bits(const std::vector<T>& v, size_t alphabet) {
  std::vector<uint64_t> count(alphabet, 0);
  for (T x : v) ++count[x];
  double bits = 0;
  for (uint64_t c : count) {
    if (c != 0)
      bits += static_cast<double>(c) * std::log2(static_cast<double>(v.size()) / static_cast<double>(c));
  }
  return bits;
}

// Adaptive code length of a sequence under an order-2 context model blended down to order 0 and to
// uniform (Witten-Bell: weight of a context = n / (n + distinct symbols seen)), learning as it goes. Unlike
// static order-0 it charges for learning rare symbols and rewards context, as a neural model would.
template <class T>
double adaptive_order2_bits(const std::vector<T>& v, size_t alphabet) {
  struct Ctx {
    uint32_t total = 0, distinct = 0;
  };
  std::unordered_map<uint64_t, Ctx> ctx1, ctx2;
  std::unordered_map<uint64_t, uint32_t> sym1, sym2;
  std::vector<uint32_t> count0(alphabet, 0);
  uint32_t total0 = 0, distinct0 = 0;
  double bits = 0;
  uint64_t prev1 = alphabet, prev2 = alphabet;  // "no symbol" at the start
  const uint64_t a = alphabet + 1;
  for (T x : v) {
    double p = 1.0 / static_cast<double>(alphabet);
    p = (count0[x] + distinct0 * p) / (total0 + distinct0 + (total0 == 0 ? 1 : 0)) * (total0 ? 1 : 0) +
        (total0 ? 0 : p);
    uint64_t c1 = prev1, c2 = prev2 * a + prev1;
    Ctx& k1 = ctx1[c1];
    uint32_t& n1 = sym1[c1 * a + x];
    if (k1.total) p = (n1 + k1.distinct * p) / (k1.total + k1.distinct);
    Ctx& k2 = ctx2[c2];
    uint32_t& n2 = sym2[c2 * a + x];
    if (k2.total) p = (n2 + k2.distinct * p) / (k2.total + k2.distinct);
    bits -= std::log2(p);
    distinct0 += count0[x] == 0;
    ++count0[x];
    ++total0;
    k1.distinct += n1 == 0;
    ++n1;
    ++k1.total;
    k2.distinct += n2 == 0;
    ++n2;
    ++k2.total;
    prev2 = prev1;
    prev1 = x;
  }
  return bits;
}

double max_rss_mb() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: %s FILE [max_vocab]\n", argv[0]);
    return 3;
  }
  std::ifstream in(argv[1], std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot open %s\n", argv[1]);
    return 1;
  }
  in.seekg(0, std::ios::end);
  std::vector<uint8_t> data(static_cast<size_t>(in.tellg()));  // exact size: no growth peak in max_rss
  in.seekg(0);
  in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(data.size()));
  nncpp::TokenizerOptions options;
  if (argc == 3) {
    options.max_vocab = std::atoi(argv[2]);
    options.adaptive = false;
  }
  const size_t n = data.size();
  const double mb = static_cast<double>(n) / 1e6;
  try {
    const double rss_before = max_rss_mb();
    auto t0 = std::chrono::steady_clock::now();
    nncpp::Dictionary dict = nncpp::build_dictionary(data.data(), n, options);
    double t_build = seconds_since(t0);
    const double build_rss = max_rss_mb() - rss_before;  // peak memory of the build beyond the input

    constexpr size_t kBlock = size_t{4} << 20;
    std::vector<uint16_t> symbols;
    std::vector<size_t> block_ends;  // symbol index where each block ends
    t0 = std::chrono::steady_clock::now();
    for (size_t pos = 0; pos < n; pos += kBlock) {
      dict.tokenize(data.data() + pos, std::min(kBlock, n - pos), &symbols);
      block_ends.push_back(symbols.size());
    }
    double t_tok = seconds_since(t0);

    std::vector<uint8_t> back;
    double t_detok = 1e30;
    for (int rep = 0; rep < 3; ++rep) {  // fast: best of three
      back.clear();
      back.reserve(n);
      t0 = std::chrono::steady_clock::now();
      size_t begin = 0;
      for (size_t end : block_ends) {
        dict.detokenize(symbols.data() + begin, end - begin, &back);
        begin = end;
      }
      t_detok = std::min(t_detok, seconds_since(t0));
    }
    bool exact = back == data;

    std::vector<uint8_t> serialized = dict.serialize();
    nncpp::Dictionary reloaded = nncpp::Dictionary::deserialize(serialized.data(), serialized.size());
    bool reload_ok = reloaded.serialize() == serialized && reloaded.vocab_size() == dict.vocab_size();

    double h_bytes = order0_bits(data, 256);
    double h_syms = order0_bits(symbols, static_cast<size_t>(dict.vocab_size()));
    const bool proxy = n <= (size_t{64} << 20);  // the order-2 proxy is slow and big on huge inputs
    double a_bytes = proxy ? adaptive_order2_bits(data, 256) : 0;
    double a_syms = proxy ? adaptive_order2_bits(symbols, static_cast<size_t>(dict.vocab_size())) : 0;

    std::printf("file              %s (%zu bytes)\n", argv[1], n);
    std::printf("mode              %s, max_vocab %d\n", options.adaptive ? "adaptive" : "fixed",
                options.max_vocab);
    std::printf("vocab             %d%s\n", dict.vocab_size(), dict.empty() ? " (bytes only)" : "");
    std::printf("build             %.3f s  %.2f MB/s\n", t_build, mb / t_build);
    std::printf("tokenize          %.3f s  %.2f MB/s\n", t_tok, mb / t_tok);
    std::printf("build+tokenize    %.2f MB/s\n", mb / (t_build + t_tok));
    std::printf("detokenize        %.3f s  %.2f MB/s\n", t_detok, mb / t_detok);
    std::printf("symbols           %zu  (%.3f bytes/symbol)\n", symbols.size(),
                static_cast<double>(n) / static_cast<double>(symbols.size()));
    std::printf("dictionary_bytes  %zu\n", serialized.size());
    std::printf("order0 bytes      %.4f bits/byte\n", h_bytes / static_cast<double>(n));
    std::printf("order0 symbols    %.4f bits/byte  (+dictionary: %.4f)\n", h_syms / static_cast<double>(n),
                (h_syms + 8.0 * static_cast<double>(serialized.size())) / static_cast<double>(n));
    if (proxy) {
      std::printf("adaptive o2 bytes %.4f bits/byte\n", a_bytes / static_cast<double>(n));
      std::printf("adaptive o2 syms  %.4f bits/byte  (+dictionary: %.4f)\n", a_syms / static_cast<double>(n),
                  (a_syms + 8.0 * static_cast<double>(serialized.size())) / static_cast<double>(n));
    }
    std::printf("build memory      %.1f MB above the input (process peak %.1f MB)\n", build_rss,
                max_rss_mb());
    std::printf("round_trip        %s, dictionary reload %s\n", exact ? "exact" : "MISMATCH",
                reload_ok ? "ok" : "MISMATCH");
    return exact && reload_ok ? 0 : 1;
  } catch (const nncpp::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
