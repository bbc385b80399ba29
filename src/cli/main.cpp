// nncpp command-line tool: parses options, opens files safely, runs the engine, maps errors to exit codes.
#include <malloc.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <new>

#include "exit_status.h"
#include "files.h"
#include "interrupt.h"
#include "nncpp/backend.h"
#include "nncpp/engine.h"
#include "nncpp/error.h"
#include "options.h"
#include "pin_kernels.h"
#include "progress.h"
#include "report.h"

namespace nncpp::cli {
namespace {

int exit_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::kIo:
      return kExitError;
    case ErrorCode::kUsage:
      return kExitUsage;
    case ErrorCode::kNotNncpp:
      return kExitNotNncpp;
    case ErrorCode::kCorrupt:
      return kExitCorrupt;
    case ErrorCode::kIncompatible:
      return kExitIncompatible;
    case ErrorCode::kOutOfMemory:
      return kExitOutOfMemory;
    case ErrorCode::kInterrupted:
      return kExitInterrupted;
  }
  return kExitError;
}

std::string output_path(const Options& o) {
  if (o.to_stdout) return "-";
  if (!o.output.empty()) return o.output;
  std::string path = default_output(o.input, o.command == Command::kCompress);
  if (path.empty())
    throw Error(ErrorCode::kUsage, o.input + ": unknown suffix (expected .nncp); name the output with -o");
  return path;
}

// -v: one line per block (info messages are shown only with -v), under the progress line.
void log_block(const char* verb, const BlockInfo& b, ProgressLine* progress) {
  if (!spdlog::should_log(spdlog::level::info)) return;
  progress->clear();
  const double raw = static_cast<double>(b.raw_bytes);
  spdlog::info(
      "block {} {}: {} bytes, {} symbols in {} streams, payload {} bytes, {:.4f} bpb (model {:.4f}), "
      "{:.2f} s, {:.1f} KB/s",
      b.index + 1, verb, b.raw_bytes, b.symbols, b.streams, b.payload_bytes, 8.0 * b.payload_bytes / raw,
      b.model_bits / raw, b.seconds, b.seconds > 0 ? raw / 1000.0 / b.seconds : 0.0);
}

// --rm, like gzip/xz: only for a file written to a file (never with -c or to stdout).
void remove_input(const Options& o, const std::string& output) {
  if (!o.remove_input || o.input == "-" || output == "-") return;
  if (::unlink(o.input.c_str()) != 0) throw Error(ErrorCode::kIo, "cannot remove " + o.input);
}

int run_compress(const Options& o, const Backend& backend, const std::atomic<bool>* cancel) {
  InputFile input(o.input);
  std::string path = output_path(o);
  if (path == "-" && ::isatty(1) && !o.force)
    throw Error(ErrorCode::kUsage, "compressed data not written to a terminal (use -f to force)");
  OutputFile output(path, o.force, o.input);
  std::istream in(input.buf());
  std::ostream out(output.buf());
  ProgressLine progress(o.verbosity > 0 && ::isatty(2));

  CompressJob job;
  job.settings = o.settings;
  job.backend = &backend;
  job.size_hint = input.size_hint();
  job.tokenizer.max_vocab = static_cast<int>(o.settings.codec.max_vocab);
  job.tokenizer.adaptive = !o.vocab_fixed;
  job.cancel = cancel;
  job.profile = o.profile;
  job.on_progress = [&progress](const ProgressInfo& info) { progress.update(info); };
  job.on_block = [&progress](const BlockInfo& b) { log_block("coded", b, &progress); };
  Stats stats = compress(in, out, job);
  output.commit();
  remove_input(o, path);
  if (!o.stats_json.empty()) write_stats_json(o.stats_json, "compress", stats);
  if (o.profile) spdlog::info("{}", describe_profile(stats));
  spdlog::info("{} -> {}: {} -> {} bytes, {:.4f} bpb, {:.1f} KB/s", o.input, path, stats.original_bytes,
               stats.output_bytes,
               stats.original_bytes ? 8.0 * stats.output_bytes / stats.original_bytes : 0.0,
               stats.seconds > 0 ? stats.original_bytes / 1000.0 / stats.seconds : 0.0);
  return kExitOk;
}

// Decompresses to a file, to stdout, or (test) nowhere.
int run_decompress(const Options& o, const Backend& backend, const std::atomic<bool>* cancel) {
  InputFile input(o.input);
  std::istream in(input.buf());
  std::unique_ptr<OutputFile> output;
  std::string path;
  if (o.command == Command::kDecompress) {
    path = output_path(o);
    output = std::make_unique<OutputFile>(path, o.force, o.input);
  }
  struct NullBuf : std::streambuf {
    int_type overflow(int_type ch) override { return traits_type::not_eof(ch); }
    std::streamsize xsputn(const char*, std::streamsize n) override { return n; }
  } null_buf;
  std::ostream out(output ? output->buf() : &null_buf);
  ProgressLine progress(o.verbosity > 0 && ::isatty(2));

  DecompressJob job;
  job.backend = &backend;
  job.ignore_fingerprint = o.ignore_fingerprint;
  job.memory_limit = o.memory_limit;
  job.cancel = cancel;
  job.profile = o.profile;
  job.on_progress = [&progress](const ProgressInfo& info) { progress.update(info); };
  job.on_block = [&progress](const BlockInfo& b) { log_block("decoded", b, &progress); };
  Stats stats = decompress(in, out, job);
  if (output) output->commit();
  if (output) remove_input(o, path);
  if (!o.stats_json.empty()) write_stats_json(o.stats_json, "decompress", stats);
  if (o.profile) spdlog::info("{}", describe_profile(stats));
  spdlog::info("{}{}{}: {} bytes, {:.1f} KB/s", o.input, output ? " -> " : ": OK", path, stats.original_bytes,
               stats.seconds > 0 ? stats.original_bytes / 1000.0 / stats.seconds : 0.0);
  return kExitOk;
}

int run_list(const Options& o) {
  InputFile input(o.input);
  std::istream in(input.buf());
  FileHeader header = read_file_header(in);
  std::cout << describe_header(header, input.size_hint(), o.json);
  return kExitOk;
}

int run(const Options& o) {
  const std::atomic<bool>* cancel = install_interrupt_handlers();
  if (o.command == Command::kList) return run_list(o);
  std::unique_ptr<Backend> backend = make_default_backend();
  if (o.command == Command::kCompress) return run_compress(o, *backend, cancel);
  return run_decompress(o, *backend, cancel);
}

}  // namespace
}  // namespace nncpp::cli

int main(int argc, char** argv) {
  using namespace nncpp::cli;
  pin_cpu_kernels(argv);
  // Training allocates megabyte-sized temporaries every segment; glibc would mmap and unmap each one and
  // the kernel would zero fresh pages every time (~8% of the run). Keep them on the heap instead.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's maximum
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  std::signal(SIGPIPE, SIG_IGN);  // a closed pipe becomes a write error, not a silent death
  Options options;
  if (std::optional<int> status = parse_options(argc, argv, &options)) return *status;

  auto logger = spdlog::stderr_color_st("nncpp");
  logger->set_pattern("nncpp: %^%l%$: %v");
  logger->set_level(options.verbosity == 0   ? spdlog::level::err
                    : options.verbosity == 1 ? spdlog::level::warn
                                             : spdlog::level::debug);
  spdlog::set_default_logger(logger);
  try {
    return run(options);
  } catch (const nncpp::Error& e) {
    spdlog::error("{}", e.what());
    return exit_status(e.code());
  } catch (const std::bad_alloc&) {
    spdlog::error("out of memory");
    return kExitOutOfMemory;
  } catch (const std::exception& e) {
    // LibTorch reports allocation failures as c10::Error with a long backtrace: keep the first line.
    std::string message = e.what();
    message = message.substr(0, message.find('\n'));
    bool oom = false;
    for (const char* sign : {"not enough memory", "out of memory", "can't allocate memory"})
      oom = oom || message.find(sign) != std::string::npos;
    if (oom) message = "out of memory (" + message + ")";
    spdlog::error("{}", message);
    return oom ? kExitOutOfMemory : kExitError;
  }
}
