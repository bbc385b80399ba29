// The in-memory API of include/nncpp/engine.h: the stream functions run on a read-only view of the input
// and a growing byte vector, so buffers and streams make and accept exactly the same files.
#include <streambuf>

#include "nncpp/engine.h"

namespace nncpp {
namespace {

// Reads data[0, size) without copying it (istream's read, gcount and peek are all the engine uses).
class ViewBuf : public std::streambuf {
 public:
  ViewBuf(const void* data, size_t size) {
    char* begin = const_cast<char*>(static_cast<const char*>(data));  // never written through get areas
    setg(begin, begin, begin + size);
  }
};

// Appends to a vector. An allocation failure propagates (the stream is set to rethrow it) as it does from
// the engine's own buffers, instead of turning into a write error.
class VectorBuf : public std::streambuf {
 public:
  explicit VectorBuf(std::vector<uint8_t>* out) : out_(out) {}

 protected:
  int_type overflow(int_type ch) override {
    if (traits_type::eq_int_type(ch, traits_type::eof())) return traits_type::not_eof(ch);
    out_->push_back(static_cast<uint8_t>(traits_type::to_char_type(ch)));
    return ch;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    out_->insert(out_->end(), reinterpret_cast<const uint8_t*>(s), reinterpret_cast<const uint8_t*>(s) + n);
    return n;
  }

 private:
  std::vector<uint8_t>* out_;
};

// Runs a stream function (compress or decompress) from a view of data[0, size) into a growing vector.
template <typename Run>
std::vector<uint8_t> run_on_buffers(const void* data, size_t size, Stats* stats, Run run) {
  ViewBuf view(data, size);
  std::istream in(&view);
  std::vector<uint8_t> result;
  VectorBuf sink(&result);
  std::ostream out(&sink);
  out.exceptions(std::ios::badbit);
  Stats done = run(in, out);
  if (stats != nullptr) *stats = done;
  return result;
}

}  // namespace

std::vector<uint8_t> compress(const void* data, size_t size, const CompressJob& job, Stats* stats) {
  CompressJob sized = job;
  sized.size_hint = size;
  return run_on_buffers(data, size, stats,
                        [&](std::istream& in, std::ostream& out) { return compress(in, out, sized); });
}

std::vector<uint8_t> decompress(const void* data, size_t size, const DecompressJob& job, Stats* stats) {
  return run_on_buffers(data, size, stats,
                        [&](std::istream& in, std::ostream& out) { return decompress(in, out, job); });
}

}  // namespace nncpp
