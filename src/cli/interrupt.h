// Signals that end a run (SIGINT, SIGTERM, SIGHUP, SIGPIPE): the handler only sets a flag; the coding loop
// checks it between segments, and a read or write blocked on a pipe or terminal returns and checks it, so
// the run unwinds and the normal error path removes temporary files. SIGXFSZ is ignored: a write beyond
// `ulimit -f` fails (EFBIG) and is reported like any other write error.
#pragma once

#include <atomic>

namespace nncpp::cli {

// Installs the handlers (once) and returns the flag they set. Call from the main thread: a signal that
// another thread (LibTorch's, OpenMP's) receives is passed on to it, so its blocking calls return EINTR.
const std::atomic<bool>* install_interrupt_handlers();

// The signal that set the flag (0 if none).
int interrupt_signal();

}  // namespace nncpp::cli
