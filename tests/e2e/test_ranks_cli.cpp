// End-to-end tests of `--ranks` (several processes coding one file, Gloo on the CPU): each compression and
// decompression runs in its own processes; the tests check bytes, exit statuses, messages and that a rank
// that dies or hangs ends the run with no output left behind. Tiny model, KB inputs.
//
// NNCPP_BIN (the built tool) and NNCPP_DATA_DIR (data/regress) come from tests/CMakeLists.txt.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;

const std::string kBin = NNCPP_BIN;
const std::string kData = NNCPP_DATA_DIR;
// A small, fast model; the mixer and match model on, as at the CPU levels.
const std::string kFast = "-1 --hidden 32 --layers 1 --min-stream 256";
constexpr int kOk = 0, kIncompatible = 6;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class Ranks : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("nncpp_ranks_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Runs the tool through the shell; returns its exit status, stderr in *err.
  int run(const std::string& args, std::string* err = nullptr) const {
    const std::string err_file = path("stderr.txt");
    const int status = std::system((kBin + " " + args + " 2>" + err_file).c_str());
    if (err != nullptr) *err = read_file(err_file);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  // The files of the test's folder but the given ones (what a failed run must not leave).
  std::vector<std::string> files_but(const std::vector<std::string>& keep) const {
    std::vector<std::string> found;
    for (const auto& e : fs::directory_iterator(dir_)) {
      const std::string name = e.path().filename().string();
      if (std::find(keep.begin(), keep.end(), name) == keep.end()) found.push_back(name);
    }
    return found;
  }

  fs::path dir_;
};

// The children of process `parent` (from /proc).
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> found;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent) found.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return found;
}

// Starts `nncpp args` (stderr to err_file) and returns its pid.
pid_t start(const std::vector<std::string>& args, const std::string& err_file) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::freopen(err_file.c_str(), "w", stderr);
    std::vector<char*> argv{const_cast<char*>(kBin.c_str())};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(kBin.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

// Waits for rank 0's worker (its child) to exist and the run to be under way (the ranks have met: rank
// 0 has opened its temporary output in `folder`); 0 if that did not happen within two minutes.
pid_t wait_for_worker(pid_t rank0, const fs::path& folder) {
  for (int i = 0; i < 2400; ++i) {
    std::vector<pid_t> children = children_of(rank0);
    bool coding = false;
    for (const auto& e : fs::directory_iterator(folder)) coding = coding || e.path().extension() == ".tmp";
    if (!children.empty() && coding) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      return children.front();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return 0;
}

int wait_status(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(Ranks, TwoRanksRoundTripInSeparateProcesses) {
  const std::string in = kData + "/sum";
  ASSERT_EQ(run("c " + kFast + " --ranks 2 " + in + " -o " + path("a.nncp")), kOk);
  ASSERT_EQ(run("d --ranks 2 " + path("a.nncp") + " -o " + path("a.out")), kOk);
  EXPECT_TRUE(read_file(path("a.out")) == read_file(in));
  EXPECT_EQ(run("t --ranks 2 " + path("a.nncp")), kOk);
  EXPECT_LT(read_file(path("a.nncp")).size(), read_file(in).size() / 2);
}

TEST_F(Ranks, TransformerWithRetrainingAndTrainGateRoundTrips) {
  // Retraining sums its gradients too; the train gate decides on every rank's loss.
  const std::string in = kData + "/grammar.lsp";
  ASSERT_EQ(run("c --ranks 2 --model transformer --layers 1 --hidden 32 --heads 2 --ff 64 --memory 16 "
                "--retrain-period 4 --retrain-window 30 --dropout 0.1 --train-skip 2 --train-margin 0.1 "
                "--min-stream 64 " +
                in + " -o " + path("a.nncp")),
            kOk);
  ASSERT_EQ(run("d --ranks 2 " + path("a.nncp") + " -o " + path("a.out")), kOk);
  EXPECT_TRUE(read_file(path("a.out")) == read_file(in));
}

TEST_F(Ranks, SameBytesInTwoRuns) {
  const std::string in = kData + "/fields.c";
  ASSERT_EQ(run("c " + kFast + " --ranks 2 " + in + " -o " + path("a.nncp")), kOk);
  ASSERT_EQ(run("c " + kFast + " --ranks 2 " + in + " -o " + path("b.nncp")), kOk);
  EXPECT_TRUE(read_file(path("a.nncp")) == read_file(path("b.nncp")));
}

TEST_F(Ranks, AnotherWorldSizeIsRefused) {
  ASSERT_EQ(run("c " + kFast + " --ranks 2 " + kData + "/grammar.lsp -o " + path("a.nncp")), kOk);
  std::string err;
  EXPECT_EQ(run("d " + path("a.nncp") + " -o " + path("one.out"), &err), kIncompatible);
  EXPECT_NE(err.find("made by 2 ranks (gloo)"), std::string::npos) << err;
  EXPECT_NE(err.find("--ranks 2"), std::string::npos) << err;
  EXPECT_EQ(run("d --ranks 3 " + path("a.nncp") + " -o " + path("three.out"), &err), kIncompatible);
  EXPECT_NE(err.find("this run has 3"), std::string::npos) << err;
  EXPECT_EQ(files_but({"a.nncp", "stderr.txt"}), std::vector<std::string>{});
  // And a file of one process refuses two.
  ASSERT_EQ(run("c " + kFast + " " + kData + "/grammar.lsp -o " + path("b.nncp")), kOk);
  EXPECT_EQ(run("d --ranks 2 " + path("b.nncp") + " -o " + path("two.out"), &err), kIncompatible);
  EXPECT_EQ(files_but({"a.nncp", "b.nncp", "stderr.txt"}), std::vector<std::string>{});
}

TEST_F(Ranks, KilledWorkerEndsTheRunCleanly) {
  const std::string out = path("a.nncp"), err_file = path("stderr.txt");
  const pid_t rank0 = start(
      {"c", "-1", "--hidden", "64", "--min-stream", "256", "--ranks", "2", kData + "/geo.head64k", "-o", out},
      err_file);
  const pid_t worker = wait_for_worker(rank0, dir_);
  ASSERT_NE(worker, 0);
  ::kill(worker, SIGKILL);
  EXPECT_NE(wait_status(rank0), kOk);
  const std::string err = read_file(err_file);
  EXPECT_NE(err.find("rank 1 was killed by signal 9"), std::string::npos) << err;
  EXPECT_EQ(files_but({"stderr.txt"}), std::vector<std::string>{});
}

TEST_F(Ranks, WorkerKilledBeforeTheRanksMetEndsTheRun) {
  const std::string err_file = path("stderr.txt");
  const pid_t rank0 =
      start({"c", "-1", "--ranks", "2", kData + "/grammar.lsp", "-o", path("a.nncp")}, err_file);
  pid_t worker = 0;
  for (int i = 0; i < 2400 && worker == 0; ++i) {
    std::vector<pid_t> children = children_of(rank0);
    if (!children.empty())
      worker = children.front();
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_NE(worker, 0);
  ::kill(worker, SIGKILL);  // most likely still loading LibTorch
  EXPECT_NE(wait_status(rank0), kOk);
  const std::string err = read_file(err_file);
  EXPECT_NE(err.find("rank 1 was killed by signal 9"), std::string::npos) << err;
  EXPECT_EQ(files_but({"stderr.txt"}), std::vector<std::string>{});
}

TEST_F(Ranks, HungWorkerEndsTheRunAtTheTimeout) {
  const std::string out = path("a.nncp"), err_file = path("stderr.txt");
  const pid_t rank0 = start({"c", "-1", "--hidden", "64", "--min-stream", "256", "--ranks", "2",
                             "--rank-timeout", "3", kData + "/geo.head64k", "-o", out},
                            err_file);
  const pid_t worker = wait_for_worker(rank0, dir_);
  ASSERT_NE(worker, 0);
  ::kill(worker, SIGSTOP);  // alive but silent; rank 0 kills it when it gives up
  EXPECT_NE(wait_status(rank0), kOk);
  const std::string err = read_file(err_file);
  EXPECT_NE(err.find("another rank stopped or timed out"), std::string::npos) << err;
  EXPECT_EQ(files_but({"stderr.txt"}), std::vector<std::string>{});
  EXPECT_NE(::kill(worker, 0), 0);  // gone, not left stopped
}

}  // namespace
