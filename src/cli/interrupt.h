// SIGINT/SIGTERM handling: the handler only sets a flag; the coding loop checks it between segments and
// unwinds, so temporary files are removed by the normal error path.
#pragma once

#include <atomic>

namespace nncpp::cli {

// Installs the handlers (once) and returns the flag they set.
const std::atomic<bool>* install_interrupt_handlers();

}  // namespace nncpp::cli
