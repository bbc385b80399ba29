// Runs a command and reports what it cost, for the golden-file check (tests/golden/check_golden.sh):
//
//   golden_measure COMMAND [ARGS...]
//
// Runs COMMAND (no shell) and prints one line to stderr, "cpu_ms=N max_rss_kb=N", from the child's
// getrusage (user + system CPU time, peak resident memory); exits with the child's status (128 + signal
// if it was killed). CPU time rather than wall time, so that a busy machine does not change the result.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s COMMAND [ARGS...]\n", argv[0]);
    return 2;
  }
  const pid_t pid = ::fork();
  if (pid < 0) return 2;
  if (pid == 0) {
    ::execvp(argv[1], argv + 1);
    _exit(127);
  }
  int status = 0;
  struct rusage usage {};
  if (::wait4(pid, &status, 0, &usage) != pid) return 2;
  const long cpu_ms = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000L +
                      (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000L;
  std::fprintf(stderr, "cpu_ms=%ld max_rss_kb=%ld\n", cpu_ms, usage.ru_maxrss);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}
