// The processes of a run with several ranks, from the tool's side (docs/architecture.md, "Ranks"):
// `--ranks N` starts N - 1 workers of this same program (a file store in a fresh temporary folder for the
// rendezvous); `--ranks env` is one process of a launcher such as torchrun (RANK, WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT; rank 0 serves a TCP store unless the launcher's agent does). Rank 0 reads the
// input and writes the output; the others serve it (nncpp::serve_rank).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nncpp/ranks.h"

namespace nncpp::cli {

class RankRun {
 public:
  // Starts the workers (a number) or reads the launcher's variables ("env"), then joins the group.
  // Throws Error(kUsage) for bad values, Error(kIo) when the ranks cannot meet within timeout_seconds.
  // While they meet, a worker that ends or a signal (cancel) ends this process at once (exit 1 or 8):
  // nothing has been opened yet, and c10d's rendezvous cannot be interrupted.
  RankRun(const std::string& ranks, double timeout_seconds, const std::atomic<bool>* cancel);
  // Kills the workers still running (after a failure) and removes the rendezvous folder.
  ~RankRun();
  RankRun(const RankRun&) = delete;
  RankRun& operator=(const RankRun&) = delete;

  RankGroup& group() { return *group_; }
  bool is_rank0() const { return group_->rank() == 0; }
  // Rank 0 after the run: ends the other ranks' service and waits for the workers it started.
  void finish();
  // Rank 0 after a failure: how the workers it started ended (each waited for a moment), e.g.
  // "rank 1 was killed by signal 9"; empty when they all still run or ended normally.
  std::string workers_report();

 private:
  void start_workers(int size, double timeout_seconds);
  // Joins the group while watching the workers and the cancel flag (see the constructor).
  void meet(const RankSetup& setup, const std::atomic<bool>* cancel);
  // Kills the workers still running, closes the group, removes the rendezvous folder.
  void end_workers();

  std::string folder_;          // the rendezvous folder (--ranks N), removed at the end
  std::vector<pid_t> workers_;  // pid of rank r + 1; 0 once reaped
  std::vector<int> statuses_;   // their wait statuses once reaped
  std::unique_ptr<RankGroup> group_;
};

// A worker started by `--ranks N` (an environment variable says which rank): joins the group and serves
// rank 0; returns the exit status. nullopt in any other process.
std::optional<int> run_rank_worker(const std::atomic<bool>* cancel);

// Whether this process is such a worker (checked before the options are parsed: it has none).
bool is_rank_worker();

// Runs rank > 0 of `--ranks env` until rank 0 ends the run; returns the exit status.
int serve_launched_rank(RankRun& run, const std::atomic<bool>* cancel);

}  // namespace nncpp::cli
