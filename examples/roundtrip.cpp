// Compresses a file in memory with the public API, decompresses it again and checks the round trip;
// optionally writes the compressed bytes, which `nncpp d` decodes like any file the tool made.
//   roundtrip FILE [OUT.nncp]
#include <nncpp/backend.h>
#include <nncpp/engine.h>
#include <nncpp/error.h>
#include <nncpp/presets.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: roundtrip FILE [OUT.nncp]\n");
    return 3;
  }
  std::ifstream file(argv[1], std::ios::binary);
  if (!file) {
    std::fprintf(stderr, "roundtrip: cannot open %s\n", argv[1]);
    return 1;
  }
  const std::vector<char> original{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};

  try {
    std::unique_ptr<nncpp::Backend> backend = nncpp::make_default_backend();  // LibTorch on the CPU

    nncpp::CompressJob compress_job;
    compress_job.settings = nncpp::preset(1);  // the fastest level, as `nncpp c -1`
    compress_job.tokenizer.max_vocab = static_cast<int>(compress_job.settings.codec.max_vocab);
    compress_job.backend = backend.get();
    nncpp::Stats stats;
    std::vector<uint8_t> packed = nncpp::compress(original.data(), original.size(), compress_job, &stats);

    nncpp::DecompressJob decompress_job;
    decompress_job.backend = backend.get();
    std::vector<uint8_t> unpacked = nncpp::decompress(packed.data(), packed.size(), decompress_job);

    if (unpacked.size() != original.size() ||
        !std::equal(unpacked.begin(), unpacked.end(), reinterpret_cast<const uint8_t*>(original.data()))) {
      std::fprintf(stderr, "roundtrip: %s did not survive the round trip\n", argv[1]);
      return 1;
    }
    if (argc == 3) {
      std::ofstream out(argv[2], std::ios::binary);
      out.write(reinterpret_cast<const char*>(packed.data()), static_cast<std::streamsize>(packed.size()));
      if (!out.flush()) {
        std::fprintf(stderr, "roundtrip: cannot write %s\n", argv[2]);
        return 1;
      }
    }
    std::printf("%s: %zu -> %zu bytes, %.4f bits per byte (%s); round trip OK\n", argv[1], original.size(),
                packed.size(), original.empty() ? 0.0 : 8.0 * packed.size() / original.size(),
                nncpp::default_backend_version().c_str());
    return 0;
  } catch (const nncpp::Error& e) {
    std::fprintf(stderr, "roundtrip: %s\n", e.what());
    return static_cast<int>(e.code());  // nncpp's exit statuses follow the error codes
  }
}
