// Several ranks without processes: rank_share.h's split of a block's streams, and the predictors' gradient
// sum (model/distributed.h) through an in-process group of threads. Replicas that each step their share
// of the streams and sum their gradients must train like one predictor stepping all streams (up to float
// rounding of the split sums), and every replica must hold the same weights, bit for bit.
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "core/rank_share.h"
#include "model/lstm.h"
#include "model/transformer.h"
#include "nncpp/format.h"
#include "nncpp/ranks.h"

namespace nncpp {
namespace {

// The ranks' meeting point: all_gather() returns every rank's bytes once all have called it.
class Exchange {
 public:
  explicit Exchange(int size) : size_(size), slots_(size) {}
  std::vector<std::vector<uint8_t>> all_gather(int rank, const std::vector<uint8_t>& mine) {
    std::unique_lock<std::mutex> lock(mutex_);
    slots_[rank] = mine;
    const uint64_t generation = generation_;
    if (++arrived_ == size_) {
      arrived_ = 0;
      result_ = slots_;
      ++generation_;
      ready_.notify_all();
    } else {
      ready_.wait(lock, [&] { return generation_ != generation; });
    }
    return result_;  // the next round cannot end before this rank joins it
  }

 private:
  int size_;
  std::mutex mutex_;
  std::condition_variable ready_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
  std::vector<std::vector<uint8_t>> slots_, result_;
};

class ThreadGroup : public RankGroup {
 public:
  ThreadGroup(Exchange* exchange, int rank, int size) : exchange_(exchange), rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "gloo"; }
  void broadcast(std::vector<uint8_t>* bytes) override { *bytes = exchange_->all_gather(rank_, *bytes)[0]; }
  std::vector<std::vector<uint8_t>> gather(const std::vector<uint8_t>& bytes) override {
    auto all = exchange_->all_gather(rank_, bytes);
    return rank_ == 0 ? all : std::vector<std::vector<uint8_t>>{};
  }
  void sum(float* values, size_t count) override { add(values, count); }
  void sum(double* values, size_t count) override { add(values, count); }

 private:
  template <typename T>
  void add(T* values, size_t count) {
    std::vector<uint8_t> mine(count * sizeof(T));
    std::memcpy(mine.data(), values, mine.size());
    auto all = exchange_->all_gather(rank_, mine);
    std::memcpy(values, all[0].data(), mine.size());
    for (int r = 1; r < size_; ++r)
      for (size_t i = 0; i < count; ++i) values[i] += reinterpret_cast<const T*>(all[r].data())[i];
  }
  Exchange* exchange_;
  int rank_, size_;
};

TEST(RankShare, SharesCoverTheBlockInOrder) {
  Settings s;
  s.model.streams = 32;
  s.codec.min_stream_symbols = 100;
  for (uint32_t ranks : {1u, 2u, 3u, 7u, 32u}) {
    s.runtime.ranks = ranks;
    for (uint64_t n : {1ull, 5ull, 99ull, 100ull, 1234ull, 3201ull, 100000ull}) {
      const int streams = streams_for_block(n, s);
      EXPECT_GE(streams, static_cast<int>(ranks));
      size_t next = 0;
      int total_streams = 0;
      for (uint32_t r = 0; r < ranks; ++r) {
        const StreamShare share = stream_share(n, s, static_cast<int>(r));
        EXPECT_GE(share.streams, 1);
        EXPECT_EQ(share.first_symbol, next) << n << " " << ranks << " " << r;
        EXPECT_EQ(share.stream_len, (n + streams - 1) / streams);
        EXPECT_LE(share.symbols, share.streams * share.stream_len);
        next += share.symbols;
        total_streams += share.streams;
      }
      EXPECT_EQ(next, n);
      EXPECT_EQ(total_streams, streams);
    }
  }
}

// A file of 2 ranks: one coded block of 20000 bytes in 4 streams (min stream symbols 4096), 2 per rank;
// the payload is the size of record 0, then both records, each a stream table of 2 streams (one size).
std::string two_rank_file(const std::vector<uint8_t>& payload) {
  FileHeader h;
  h.settings.runtime.ranks = 2;
  h.settings.runtime.rank_backend = "gloo";
  h.fingerprint = FingerprintDigest(kFingerprintBytes, 0);
  h.original_size = 20000;
  std::ostringstream out;
  uint32_t crc = 0;
  write_file_header(out, h, &crc);
  BlockHeader b;
  b.raw_bytes = 20000;
  b.symbols = 20000;
  b.payload_bytes = static_cast<uint32_t>(payload.size());
  write_block(out, b, payload.data(), true, &crc);
  write_member_end(out, true, crc);
  return out.str();
}

TEST(RankFormat, RankRecordsAreCheckedBeforeDecoding) {
  auto parse = [](const std::string& file) {
    return parse_container(reinterpret_cast<const uint8_t*>(file.data()), file.size());
  };
  const std::vector<Member> members = parse(two_rank_file({4, 1, 9, 9, 9, 1, 9, 9}));
  ASSERT_EQ(members.size(), 1u);
  EXPECT_EQ(members[0].header.settings.runtime.ranks, 2u);
  EXPECT_EQ(members[0].header.settings.runtime.rank_backend, "gloo");
  try {
    // Record 0 is {1}: its stream table names 1 byte where none is left. (As one table of 4 streams,
    // sizes 1, 1, 0 and 2 bytes, it would pass.)
    parse(two_rank_file({1, 1, 0, 5, 5}));
    FAIL() << "a record whose stream table does not fit was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorrupt) << e.what();
  }
}

TEST(RankFormat, SettingsNeedABackendAndNoMoreRanksThanStreams) {
  Settings s;
  s.runtime.ranks = 2;
  EXPECT_THROW(validate(s), Error);  // no backend named
  s.runtime.rank_backend = "gloo";
  EXPECT_NO_THROW(validate(s));
  s.model.streams = 1;
  EXPECT_THROW(validate(s), Error);  // a rank without a stream
  s.model.streams = 32;
  s.runtime.ranks = 1;
  EXPECT_THROW(validate(s), Error);  // one rank names no backend
}

// Steps `segments` segments of random symbols through one predictor over all B streams and through
// `ranks` replicas over their shares (threads), training after each; compares the distributions.
template <typename Make>
void expect_replicas_train_like_one(const ModelSettings& s, int ranks, int segments, bool retrain,
                                    Make make) {
  const int B = static_cast<int>(s.streams), T = static_cast<int>(s.segment), V = static_cast<int>(s.vocab);
  std::mt19937_64 g(7);
  std::vector<uint16_t> symbols(static_cast<size_t>(segments) * T * B);
  for (auto& x : symbols) x = static_cast<uint16_t>(g() % (V / 2));  // half the vocabulary: learnable
  std::vector<uint8_t> mask(static_cast<size_t>(T) * B, 1);
  mask[1] = 0;  // a padding position (stream 1 of step 0) on the first rank's share

  // Runs one predictor over streams [first, first + count); returns its distributions per step.
  auto run = [&](Predictor& p, int first, int count) {
    std::vector<float> probs;
    p.reset_streams(count);
    std::vector<uint16_t> prev(count, 0), targets(static_cast<size_t>(T) * count);
    std::vector<uint8_t> m(targets.size());
    for (int seg = 0; seg < segments; ++seg) {
      for (int t = 0; t < T; ++t) {
        const float* q = p.step(prev.data(), nullptr);
        probs.insert(probs.end(), q, q + static_cast<size_t>(count) * V);
        for (int b = 0; b < count; ++b) {
          const uint16_t x = symbols[(static_cast<size_t>(seg) * T + t) * B + first + b];
          targets[static_cast<size_t>(t) * count + b] = x;
          m[static_cast<size_t>(t) * count + b] = mask[static_cast<size_t>(t) * B + first + b];
          prev[b] = x;
        }
      }
      p.train(targets.data(), m.data(), T, true);
      if (retrain) p.retrain(targets.data(), targets.data(), m.data(), T);  // any window will do
    }
    return probs;
  };

  auto whole = make(nullptr);
  const std::vector<float> expected = run(*whole, 0, B);
  Exchange exchange(ranks);
  std::vector<std::unique_ptr<ThreadGroup>> groups;
  std::vector<std::vector<float>> got(ranks);
  std::vector<std::vector<torch::Tensor>> params(ranks);
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r) groups.push_back(std::make_unique<ThreadGroup>(&exchange, r, ranks));
  for (int r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r] {
      auto replica = make(groups[r].get());
      const int first = r * B / ranks, count = (r + 1) * B / ranks - first;
      got[r] = run(*replica, first, count);
      params[r] = replica->parameters();
    });
  }
  for (std::thread& t : threads) t.join();

  double worst = 0;
  for (int r = 0; r < ranks; ++r) {
    const int first = r * B / ranks, count = (r + 1) * B / ranks - first;
    for (int step = 0; step < segments * T; ++step)
      for (int b = 0; b < count; ++b)
        for (int v = 0; v < V; ++v) {
          const float a = expected[(static_cast<size_t>(step) * B + first + b) * V + v];
          const float c = got[r][(static_cast<size_t>(step) * count + b) * V + v];
          worst = std::max(worst, static_cast<double>(std::fabs(a - c)));
        }
    for (size_t k = 0; k < params[r].size(); ++k)
      EXPECT_TRUE(torch::equal(params[r][k], params[0][k])) << "rank " << r << " parameter " << k;
  }
  EXPECT_LT(worst, 1e-4) << "largest difference of a probability";
  // Training changed the distributions: the comparison is not between two untrained models.
  float moved = 0;
  for (int v = 0; v < V; ++v)
    moved = std::max(moved,
                     std::fabs(expected[v] - expected[(static_cast<size_t>(segments * T - 1) * B) * V + v]));
  EXPECT_GT(moved, 1e-3);
}

TEST(RankReplicas, LstmSharesTrainLikeOnePredictor) {
  torch::set_num_threads(1);
  ModelSettings s;
  s.vocab = 16;
  s.layers = 2;
  s.hidden = 16;
  s.embed = 8;
  s.streams = 6;
  s.segment = 5;
  for (int ranks : {2, 3}) {
    expect_replicas_train_like_one(s, ranks, 6, false, [&](RankGroup* group) {
      auto p = std::make_unique<LstmPredictor>(s, torch::Device(torch::kCPU));
      p->set_ranks(group);
      return p;
    });
  }
}

TEST(RankReplicas, TransformerSharesTrainAndRetrainLikeOnePredictor) {
  torch::set_num_threads(1);
  ModelSettings s;
  s.kind = ModelKind::kTransformer;
  s.vocab = 16;
  s.layers = 2;
  s.hidden = 16;
  s.heads = 2;
  s.ff = 24;
  s.memory = 8;
  s.streams = 4;
  s.segment = 5;
  s.lr = 1e-2f;
  s.lr_decay = 100;
  s.retrain_period = 1;
  s.retrain_window = 5;
  s.retrain_lr = 1e-2f;
  expect_replicas_train_like_one(s, 2, 6, true, [&](RankGroup* group) {
    auto p = std::make_unique<TransformerPredictor>(s, torch::Device(torch::kCPU));
    p->set_ranks(group);
    return p;
  });
}

}  // namespace
}  // namespace nncpp
