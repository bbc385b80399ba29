// The in-memory API (include/nncpp/engine.h): buffers make the same files as streams, round-trip, and fail
// with the same error codes on foreign, truncated or incompatible input. Runs the coding loop with the
// small deterministic predictor of tests/support/count_predictor.h, without LibTorch.
#include <gtest/gtest.h>

#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "nncpp/engine.h"
#include "nncpp/error.h"
#include "support/count_predictor.h"

namespace nncpp {
namespace {

using test_support::TestBackend;

Settings small_settings() {
  Settings s;
  s.codec.match_order = 3;
  s.codec.match_hash_bits = 12;
  s.codec.block_bytes = 1024;  // several blocks for a few KB
  s.codec.min_stream_symbols = 64;
  s.model.streams = 4;
  s.model.segment = 7;
  return s;
}

std::vector<uint8_t> sample(size_t n) {
  static const char* words[] = {"the ", "quick ", "brown ", "fox ", "jumps ", "over ", "lazy ", "dog.\n"};
  std::mt19937_64 g(7);
  std::string s;
  while (s.size() < n) s += words[g() % 8];
  s.resize(n);
  return {s.begin(), s.end()};
}

CompressJob compress_job(const Backend& backend) {
  CompressJob job;
  job.settings = small_settings();
  job.backend = &backend;
  return job;
}

DecompressJob decompress_job(const Backend& backend) {
  DecompressJob job;
  job.backend = &backend;
  return job;
}

ErrorCode decompress_error(const std::vector<uint8_t>& file, const Backend& backend) {
  try {
    decompress(file.data(), file.size(), decompress_job(backend));
  } catch (const Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "decompress accepted a bad file";
  return ErrorCode::kIo;
}

TEST(Buffers, RoundTripAndStatistics) {
  const std::vector<uint8_t> data = sample(5000);
  TestBackend backend;
  Stats c, d;
  std::vector<uint8_t> file = compress(data.data(), data.size(), compress_job(backend), &c);
  std::vector<uint8_t> back = decompress(file.data(), file.size(), decompress_job(backend), &d);
  EXPECT_EQ(back, data);
  EXPECT_EQ(c.original_bytes, data.size());
  EXPECT_EQ(c.output_bytes, file.size());
  EXPECT_EQ(d.original_bytes, data.size());
  EXPECT_GT(c.blocks, 1u);
  EXPECT_LT(file.size(), data.size());
}

TEST(Buffers, SameFileAsTheStreams) {
  const std::vector<uint8_t> data = sample(3000);
  TestBackend backend;
  std::vector<uint8_t> from_buffer = compress(data.data(), data.size(), compress_job(backend));

  std::istringstream in(std::string(data.begin(), data.end()));
  std::ostringstream out;
  CompressJob job = compress_job(backend);
  job.size_hint = data.size();
  compress(in, out, job);
  const std::string from_stream = out.str();
  EXPECT_EQ(std::string(from_buffer.begin(), from_buffer.end()), from_stream);

  // A file made from a stream decodes from a buffer, and the other way round.
  std::vector<uint8_t> file(from_stream.begin(), from_stream.end());
  EXPECT_EQ(decompress(file.data(), file.size(), decompress_job(backend)), data);
  std::istringstream file_in(from_stream);
  std::ostringstream back;
  decompress(file_in, back, decompress_job(backend));
  EXPECT_EQ(back.str(), std::string(data.begin(), data.end()));
}

TEST(Buffers, EmptyInput) {
  TestBackend backend;
  std::vector<uint8_t> file = compress(nullptr, 0, compress_job(backend));
  EXPECT_FALSE(file.empty());
  EXPECT_TRUE(decompress(file.data(), file.size(), decompress_job(backend)).empty());
}

TEST(Buffers, TheBufferSizeWinsOverAStaleSizeHint) {
  const std::vector<uint8_t> data = sample(2000);
  TestBackend backend;
  CompressJob job = compress_job(backend);
  job.size_hint = 5;  // a stream caller's hint; the buffer knows better
  std::vector<uint8_t> file = compress(data.data(), data.size(), job);
  EXPECT_EQ(decompress(file.data(), file.size(), decompress_job(backend)), data);
}

TEST(Buffers, SameErrorsAsTheStreams) {
  const std::vector<uint8_t> data = sample(3000);
  TestBackend backend;
  std::vector<uint8_t> file = compress(data.data(), data.size(), compress_job(backend));

  std::vector<uint8_t> foreign = sample(100);
  EXPECT_EQ(decompress_error(foreign, backend), ErrorCode::kNotNncpp);

  std::vector<uint8_t> truncated(file.begin(), file.end() - 3);
  EXPECT_EQ(decompress_error(truncated, backend), ErrorCode::kCorrupt);

  std::vector<uint8_t> damaged = file;
  damaged[damaged.size() / 2] ^= 0x10;
  EXPECT_EQ(decompress_error(damaged, backend), ErrorCode::kCorrupt);

  TestBackend other_version("2");
  EXPECT_EQ(decompress_error(file, other_version), ErrorCode::kIncompatible);
}

}  // namespace
}  // namespace nncpp
