#include "interrupt.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <initializer_list>

namespace nncpp::cli {
namespace {

// A signal handler can reach only static storage; these lock-free values are the CLI's only statics.
std::atomic<bool>& interrupted() {
  static std::atomic<bool> flag{false};
  return flag;
}
std::atomic<int>& last_signal() {
  static std::atomic<int> number{0};
  return number;
}
std::atomic<long>& main_thread() {
  static std::atomic<long> tid{0};
  return tid;
}

extern "C" void on_signal(int sig) {
  const int saved = errno;
  interrupted().store(true, std::memory_order_relaxed);
  last_signal().store(sig, std::memory_order_relaxed);
  // Blocking reads and writes happen on the main thread: make sure they see the signal.
  const long tid = main_thread().load(std::memory_order_relaxed);
  if (tid != 0 && ::syscall(SYS_gettid) != tid) ::syscall(SYS_tgkill, ::getpid(), tid, sig);
  errno = saved;
}

}  // namespace

const std::atomic<bool>* install_interrupt_handlers() {
  static_assert(std::atomic<bool>::is_always_lock_free, "the flag must be safe to set in a signal handler");
  static_assert(std::atomic<long>::is_always_lock_free, "the thread id must be safe to read in a handler");
  main_thread().store(::syscall(SYS_gettid));
  struct sigaction action {};
  action.sa_handler = on_signal;  // no SA_RESTART: blocking calls return EINTR
  sigemptyset(&action.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) sigaction(sig, &action, nullptr);
  std::signal(SIGXFSZ, SIG_IGN);
  return &interrupted();
}

int interrupt_signal() {
  return last_signal().load(std::memory_order_relaxed);
}

}  // namespace nncpp::cli
