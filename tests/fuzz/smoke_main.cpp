// Runs a libFuzzer target without libFuzzer, with any compiler, for CTest: every file of a seed corpus, then
// mutants of them (bit flips, byte changes, cuts, insertions, repeats, splices, interesting 32-bit values)
// and random inputs, all from a fixed seed so that a failure reproduces.
//
//   fuzz_container_smoke CORPUS_DIR [INPUTS]
//
// A crash or a failed check ends the run; the input that caused it is written to ./smoke-crash-input first
// (replay it with the libFuzzer build: build-fuzz/tests/fuzz/fuzz_container smoke-crash-input).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
// Optional, defined by a target that can tell whether the run reached what it should: a message, or null.
extern "C" __attribute__((weak)) const char* NncppFuzzSmokeCheck();
// Present in sanitizer builds: ASan and UBSan end the process without a signal, so ask them to call us.
extern "C" __attribute__((weak)) void __sanitizer_set_death_callback(void (*callback)(void));

namespace {

using Bytes = std::vector<uint8_t>;

// The input being run, for the crash handler.
const Bytes* g_current = nullptr;

void save_input() {
  if (g_current != nullptr) {
    int fd = ::open("smoke-crash-input", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ssize_t ignored = ::write(fd, g_current->data(), g_current->size());
      (void)ignored;
      ::close(fd);
    }
    const char msg[] = "fuzz smoke: crashed; input written to smoke-crash-input\n";
    ssize_t ignored = ::write(2, msg, sizeof msg - 1);
    (void)ignored;
    g_current = nullptr;
  }
}

void on_crash(int sig) {
  save_input();
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

class Rng {  // splitmix64
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(next() % n); }

 private:
  uint64_t s_;
};

void mutate(Bytes* b, const std::vector<Bytes>& seeds, Rng& rng) {
  static const uint32_t kInteresting[] = {0,          1,           2,           0x7F,     0x80,
                                          0xFF,       0x100,       0x400,       0xFFFF,   0x10000,
                                          0x7FFFFFFF, 0x80000000u, 0xFFFFFFFFu, 1u << 30, 1u << 20};
  const size_t at = rng.below(b->size() + 1);
  switch (rng.below(9)) {
    case 0:  // flip a bit
      if (!b->empty()) (*b)[rng.below(b->size())] ^= static_cast<uint8_t>(1u << rng.below(8));
      break;
    case 1:  // set a byte
      if (!b->empty()) (*b)[rng.below(b->size())] = static_cast<uint8_t>(rng.next());
      break;
    case 2:  // an interesting little-endian 32-bit value
      if (b->size() >= 4) {
        const uint32_t v = kInteresting[rng.below(std::size(kInteresting))];
        const size_t p = rng.below(b->size() - 3);
        for (int i = 0; i < 4; ++i) (*b)[p + i] = static_cast<uint8_t>(v >> (8 * i));
      }
      break;
    case 3:  // cut the end
      b->resize(rng.below(b->size() + 1));
      break;
    case 4:  // delete a range
      if (at < b->size()) b->erase(b->begin() + at, b->begin() + at + rng.below(b->size() - at) + 1);
      break;
    case 5: {  // insert random bytes
      Bytes ins(1 + rng.below(16));
      for (uint8_t& x : ins) x = static_cast<uint8_t>(rng.next());
      b->insert(b->begin() + at, ins.begin(), ins.end());
      break;
    }
    case 6:  // repeat a range
      if (at < b->size() && b->size() < (1u << 16)) {
        Bytes piece(b->begin() + at, b->begin() + at + rng.below(std::min<size_t>(b->size() - at, 256)) + 1);
        b->insert(b->begin() + rng.below(b->size() + 1), piece.begin(), piece.end());
      }
      break;
    case 7:  // splice: our head, another seed's tail
      if (!seeds.empty()) {
        const Bytes& other = seeds[rng.below(seeds.size())];
        b->resize(at);
        b->insert(b->end(), other.begin() + rng.below(other.size() + 1), other.end());
      }
      break;
    default:  // change the first byte (the option byte of fuzz_container)
      if (!b->empty()) (*b)[0] = static_cast<uint8_t>(rng.next());
      break;
  }
}

void run(const Bytes& input) {
  g_current = &input;
  // Copy to an exact-size heap buffer, as libFuzzer does, so that ASan catches reads past the end.
  std::unique_ptr<uint8_t[]> copy(new uint8_t[input.size()]);
  std::copy(input.begin(), input.end(), copy.get());
  LLVMFuzzerTestOneInput(input.empty() ? nullptr : copy.get(), input.size());
  g_current = nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR [INPUTS]\n", argv[0]);
    return 2;
  }
  const size_t inputs = argc == 3 ? std::strtoul(argv[2], nullptr, 10) : 3000;
  for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) std::signal(sig, on_crash);
  if (__sanitizer_set_death_callback != nullptr) __sanitizer_set_death_callback(save_input);

  std::vector<std::filesystem::path> paths;
  for (const auto& e : std::filesystem::directory_iterator(argv[1]))
    if (e.is_regular_file()) paths.push_back(e.path());
  std::sort(paths.begin(), paths.end());  // directory order is not deterministic
  std::vector<Bytes> seeds;
  for (const auto& p : paths) {
    std::ifstream f(p, std::ios::binary);
    seeds.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    run(seeds.back());
  }

  Rng rng(0x6e6e6370707a7aull);
  for (size_t i = 0; i < inputs; ++i) {
    Bytes b;
    if (seeds.empty() || rng.below(8) == 0) {  // random bytes
      b.resize(rng.below(1024));
      for (uint8_t& x : b) x = static_cast<uint8_t>(rng.next());
    } else {
      b = seeds[rng.below(seeds.size())];
      for (size_t m = 1 + rng.below(4); m > 0; --m) mutate(&b, seeds, rng);
    }
    run(b);
  }

  if (NncppFuzzSmokeCheck != nullptr)
    if (const char* problem = NncppFuzzSmokeCheck()) {
      std::fprintf(stderr, "fuzz smoke: %s\n", problem);
      return 1;
    }
  std::printf("fuzz smoke: %zu seeds and %zu generated inputs, no finding\n", seeds.size(), inputs);
  return 0;
}
