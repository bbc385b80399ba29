#include "ranks.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "exit_status.h"
#include "nncpp/engine.h"
#include "nncpp/error.h"
#include "torch_module_loader.h"

extern char** environ;

namespace nncpp::cli {
namespace {

// The worker's rank, the group's size, the store file and the timeout, as "RANK SIZE TIMEOUT FILE".
constexpr const char* kWorkerVariable = "NNCPP_RANK_WORKER";

int parse_int(const char* name, const char* text, int low, int high) {
  char* end = nullptr;
  const long v = text != nullptr ? std::strtol(text, &end, 10) : 0;
  if (text == nullptr || *text == '\0' || *end != '\0' || v < low || v > high)
    throw Error(ErrorCode::kUsage, std::string("--ranks env: ") + name + " must be " + std::to_string(low) +
                                       ".." + std::to_string(high) +
                                       (text ? std::string(", not '") + text + "'" : " (unset)"));
  return static_cast<int>(v);
}

std::string describe_status(int rank, int status) {
  if (WIFSIGNALED(status))
    return "rank " + std::to_string(rank) + " was killed by signal " + std::to_string(WTERMSIG(status));
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
    return "rank " + std::to_string(rank) + " exited with status " + std::to_string(WEXITSTATUS(status));
  return "";
}

// Serves rank 0 until it ends the run; errors are logged with the rank and become the exit status.
int serve(RankGroup& group, const std::atomic<bool>* cancel) {
  const std::string who = "rank " + std::to_string(group.rank());
  try {
    TorchModuleBackend backend(&group);
    serve_rank(group, backend, cancel);
    return kExitOk;
  } catch (const Error& e) {
    spdlog::error("{}: {}", who, e.what());
    return exit_status(e.code());
  } catch (const BackendMissing& e) {
    spdlog::error("{}: {}", who, e.what());
    return kExitNoBackend;
  } catch (const std::exception& e) {
    spdlog::error("{}: {}", who, std::string(e.what()).substr(0, std::string(e.what()).find('\n')));
    return kExitError;
  }
}

}  // namespace

RankRun::RankRun(const std::string& ranks, double timeout_seconds, const std::atomic<bool>* cancel) {
  RankSetup setup;
  setup.timeout_seconds = timeout_seconds;
  if (ranks == "env") {
    setup.size = parse_int("WORLD_SIZE", std::getenv("WORLD_SIZE"), 1, static_cast<int>(kMaxRanks));
    setup.rank = parse_int("RANK", std::getenv("RANK"), 0, setup.size - 1);
    const char* addr = std::getenv("MASTER_ADDR");
    if (addr == nullptr || *addr == '\0') throw Error(ErrorCode::kUsage, "--ranks env: MASTER_ADDR is unset");
    setup.master_addr = addr;
    setup.master_port = static_cast<uint16_t>(parse_int("MASTER_PORT", std::getenv("MASTER_PORT"), 1, 65535));
    // torchrun's agent may already serve the store there (PyTorch 2.x: TORCHELASTIC_USE_AGENT_STORE).
    const char* agent = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
    setup.serve_store = setup.rank == 0 && !(agent != nullptr && std::strcmp(agent, "True") == 0);
    group_ = load_gloo_group(setup);
    return;
  }
  setup.size = std::stoi(ranks);
  if (setup.size == 1) {  // nothing to start: a group of one (no collectives)
    group_ = load_gloo_group(setup);
    return;
  }
  try {
    start_workers(setup.size, timeout_seconds);
    setup.store_file = folder_ + "/store";
    meet(setup, cancel);
  } catch (...) {  // the destructor does not run for a constructor that throws
    end_workers();
    throw;
  }
}

void RankRun::meet(const RankSetup& setup, const std::atomic<bool>* cancel) {
  std::atomic<bool> met{false};
  std::thread watch([&] {
    while (!met.load()) {
      std::string why;
      if (cancel != nullptr && cancel->load()) why = "interrupted";
      for (size_t i = 0; i < workers_.size() && why.empty(); ++i) {
        int status = 0;
        if (::waitpid(workers_[i], &status, WNOHANG) == workers_[i]) {
          workers_[i] = 0;
          why = describe_status(static_cast<int>(i) + 1, status);
          if (why.empty()) why = "rank " + std::to_string(i + 1) + " ended";
          why += " before the ranks met";
        }
      }
      if (!why.empty()) {
        spdlog::error("{}", why);
        for (pid_t pid : workers_)
          if (pid != 0) ::kill(pid, SIGKILL);
        std::error_code ec;
        std::filesystem::remove_all(folder_, ec);
        std::fflush(stderr);
        ::_exit(why == "interrupted" ? kExitInterrupted : kExitError);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  try {
    group_ = load_gloo_group(setup);
  } catch (...) {
    met = true;
    watch.join();
    throw;
  }
  met = true;
  watch.join();
}

void RankRun::start_workers(int size, double timeout_seconds) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/nncpp-ranks-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr)
    throw Error(ErrorCode::kIo,
                "--ranks: cannot make a temporary folder: " + std::string(std::strerror(errno)));
  folder_ = pattern;
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e)
    if (std::strncmp(*e, kWorkerVariable, std::strlen(kWorkerVariable)) != 0) env.push_back(*e);
  env.push_back("");  // the worker's own variable, set per rank below
  for (int rank = 1; rank < size; ++rank) {
    char value[64];
    std::snprintf(value, sizeof value, "%d %d %.3f ", rank, size, timeout_seconds);
    env.back() = std::string(kWorkerVariable) + "=" + value + folder_ + "/store";
    std::vector<char*> envp;
    for (std::string& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    char name[] = "nncpp";
    char* argv[] = {name, nullptr};
    // stdin and stdout may be the data's pipes: a worker keeps neither open (its messages go to stderr).
    posix_spawn_file_actions_t files;
    ::posix_spawn_file_actions_init(&files);
    ::posix_spawn_file_actions_addopen(&files, 0, "/dev/null", O_RDONLY, 0);
    ::posix_spawn_file_actions_addopen(&files, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    const int err = ::posix_spawn(&pid, "/proc/self/exe", &files, nullptr, argv, envp.data());
    ::posix_spawn_file_actions_destroy(&files);
    if (err != 0)
      throw Error(ErrorCode::kIo, "--ranks: cannot start a worker: " + std::string(std::strerror(err)));
    workers_.push_back(pid);
    statuses_.push_back(0);
  }
}

void RankRun::finish() {
  finish_ranks(*group_);
  for (size_t i = 0; i < workers_.size(); ++i) {
    if (workers_[i] == 0) continue;
    int status = 0;
    if (::waitpid(workers_[i], &status, 0) == workers_[i]) {
      workers_[i] = 0;
      statuses_[i] = status;
    }
  }
}

std::string RankRun::workers_report() {
  std::string report;
  // A worker that lost its peer ends within moments; one that was killed has ended already.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  for (size_t i = 0; i < workers_.size(); ++i) {
    while (workers_[i] != 0) {
      int status = 0;
      if (::waitpid(workers_[i], &status, WNOHANG) == workers_[i]) {
        workers_[i] = 0;
        statuses_[i] = status;
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (workers_[i] != 0) continue;  // still waiting for rank 0, or stopped (the timeout said so)
    const std::string line = describe_status(static_cast<int>(i) + 1, statuses_[i]);
    if (!line.empty()) report += (report.empty() ? "" : "; ") + line;
  }
  return report;
}

RankRun::~RankRun() {
  end_workers();
}

void RankRun::end_workers() {
  // After a failure: a worker may be stopped or waiting for the others. Ended before the group closes,
  // so it does not report the closed connection as its own failure.
  for (pid_t& pid : workers_) {
    if (pid == 0) continue;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = 0;
  }
  group_.reset();
  if (!folder_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(folder_, ec);
  }
}

bool is_rank_worker() {
  return std::getenv(kWorkerVariable) != nullptr;
}

std::optional<int> run_rank_worker(const std::atomic<bool>* cancel) {
  const char* value = std::getenv(kWorkerVariable);
  if (value == nullptr) return std::nullopt;
  RankSetup setup;
  char file[4096] = "";
  if (std::sscanf(value, "%d %d %lf %4095[^\n]", &setup.rank, &setup.size, &setup.timeout_seconds, file) !=
      4) {
    spdlog::error("{} is malformed", kWorkerVariable);
    return kExitUsage;
  }
  setup.store_file = file;
  try {
    std::unique_ptr<RankGroup> group = load_gloo_group(setup);
    return serve(*group, cancel);
  } catch (const Error& e) {
    spdlog::error("rank {}: {}", setup.rank, e.what());
    return exit_status(e.code());
  }
}

int serve_launched_rank(RankRun& run, const std::atomic<bool>* cancel) {
  return serve(run.group(), cancel);
}

}  // namespace nncpp::cli
