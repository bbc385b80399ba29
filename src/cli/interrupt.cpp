#include "interrupt.h"

#include <csignal>

namespace nncpp::cli {
namespace {

// A signal handler can reach only static storage; this lock-free flag is the CLI's one static.
std::atomic<bool>& interrupted() {
  static std::atomic<bool> flag{false};
  return flag;
}

extern "C" void on_signal(int) {
  interrupted().store(true, std::memory_order_relaxed);
}

}  // namespace

const std::atomic<bool>* install_interrupt_handlers() {
  static_assert(std::atomic<bool>::is_always_lock_free, "the flag must be safe to set in a signal handler");
  std::atomic<bool>* flag = &interrupted();
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  return flag;
}

}  // namespace nncpp::cli
