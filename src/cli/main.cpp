// nncpp command-line tool: parses options, decides which files go where, opens them safely, runs the
// engine, and maps errors to exit codes.
#include <malloc.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <new>
#include <sstream>

#include "exit_status.h"
#include "files.h"
#include "interrupt.h"
#include "nncpp/engine.h"
#include "nncpp/error.h"
#include "options.h"
#include "progress.h"
#include "ranks.h"
#include "report.h"
#include "torch_module_loader.h"

namespace nncpp::cli {
namespace {

namespace fs = std::filesystem;

// A file to work on: its input and, for c and d, where the output goes.
struct Task {
  std::string input;
  std::string output;              // "-" = stdout; empty for t and l
  bool output_positional = false;  // named as the second name of `c IN OUT` / `d IN OUT`
  bool output_named = false;       // by -o or as the second name
  bool from_folder = false;        // found by -r (not named on the command line)
};

// A file skipped with a warning (exit status 2 unless something failed), as gzip does.
struct Skip {
  std::string message;
};

std::string shown(const std::string& name, bool output) {
  return name == "-" ? (output ? "stdout" : "stdin") : name;
}

// "200.00 KB": decimal units as in the speed figures (KB/s); bytes below 1000.
std::string human_size(uint64_t bytes) {
  char text[32];
  if (bytes < 1000) {
    std::snprintf(text, sizeof text, "%llu B", static_cast<unsigned long long>(bytes));
    return text;
  }
  double value = static_cast<double>(bytes) / 1000;
  const char* unit = "KB";
  for (const char* next : {"MB", "GB", "TB"}) {
    if (value < 1000) break;
    value /= 1000;
    unit = next;
  }
  std::snprintf(text, sizeof text, "%.2f %s", value, unit);
  return text;
}

// ---- which files ----------------------------------------------------------------------------------------

// The regular files under `folder` (symbolic links are not followed), sorted, that `wanted` accepts.
void walk(const std::string& folder, bool (*wanted)(const std::string&), std::vector<std::string>* found) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec))
    names.push_back(it->path());
  if (ec) throw Error(ErrorCode::kIo, "cannot read the folder " + folder + ": " + ec.message());
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    fs::file_status st = fs::symlink_status(name, ec);
    if (fs::is_directory(st)) {
      walk(name, wanted, found);
    } else if (fs::is_regular_file(st) && wanted(name)) {
      found->push_back(name);
    } else if (!fs::is_regular_file(st)) {
      spdlog::info("{}: not a regular file, skipped", name);
    }
  }
}

bool any_file(const std::string&) {
  return true;
}

// Turns the command line's names into tasks. Throws Error(kUsage) for forms that make no sense.
std::vector<Task> plan(const Options& o) {
  const bool writes = o.command == Command::kCompress || o.command == Command::kDecompress;
  const bool compress = o.command == Command::kCompress;
  const bool several = !writes || o.multiple || o.recursive || o.to_stdout || o.files.size() > 2;
  std::vector<Task> tasks;
  if (writes && !several && o.files.size() == 2) {  // `c IN OUT`, as NNCP is called
    if (!o.output.empty())
      throw Error(ErrorCode::kUsage,
                  "two names (IN OUT) and -o: name the output one way only "
                  "(to compress several files: nncpp c -m FILE...)");
    return {Task{o.files[0], o.files[1], true, true, false}};
  }
  if (writes && !o.output.empty() && o.files.size() > 1)
    throw Error(ErrorCode::kUsage, "-o names the output of one input; leave it out with several");
  if (compress && o.to_stdout && (o.files.size() > 1 || o.recursive))
    throw Error(ErrorCode::kUsage, "c -c takes one input");
  for (const std::string& name : o.files) {
    std::error_code ec;
    if (o.recursive && name != "-" && fs::is_directory(name, ec)) {
      std::vector<std::string> found;
      walk(name, compress ? any_file : has_nncp_suffix, &found);
      for (const std::string& f : found) tasks.push_back(Task{f, "", false, false, true});
    } else {
      tasks.push_back(Task{name, "", false, false, false});
    }
  }
  if (!writes) return tasks;
  for (Task& t : tasks) {
    t.output_named = o.to_stdout || !o.output.empty();
    t.output = o.to_stdout ? "-" : !o.output.empty() ? o.output : default_output(t.input, compress);
  }
  if (!o.stats_json.empty() && tasks.size() != 1)
    throw Error(ErrorCode::kUsage, "--stats-json describes one run: give one input");
  return tasks;
}

// Same file (when both exist) or same name.
bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (a == "-" || b == "-") return false;
  if (fs::exists(a, ec) && fs::exists(b, ec)) return fs::equivalent(a, b, ec);
  return fs::absolute(a, ec).lexically_normal() == fs::absolute(b, ec).lexically_normal();
}

// The checks that need no file opened, made before any work (so a refusal costs nothing).
void check_task(const Options& o, const Task& t) {
  const bool compress = o.command == Command::kCompress;
  if (t.input != "-") {
    std::error_code ec;
    if (fs::is_directory(t.input, ec)) throw Skip{"is a directory -- ignored (use -r for its files)"};
    if (compress && has_nncp_suffix(t.input) && !t.output_named && !o.force)
      throw Skip{"already has the .nncp suffix -- unchanged (use -f to compress it again)"};
  }
  if (o.command != Command::kCompress && t.input == "-" && ::isatty(0) && !o.force)
    throw Error(ErrorCode::kUsage, "compressed data not read from a terminal (use -f to force)");
  if (o.command == Command::kDecompress && t.output.empty())
    throw Error(ErrorCode::kUsage, "unknown suffix (expected .nncp); name the output with -o");
  if (compress && t.output == "-" && ::isatty(1) && !o.force)
    throw Error(ErrorCode::kUsage, "compressed data not written to a terminal (use -f to force)");
  // `c x1 x2` as gzip users type it for two files must not replace x2 with x1's compressed data, nor
  // `d a.nncp b.nncp` replace b.nncp with a's decompressed data: only -o may name such a file.
  std::error_code ec;
  if (t.output_positional && fs::is_regular_file(t.output, ec)) {
    const bool nncpp_file = is_nncpp_file(t.output);
    if (compress && !nncpp_file)
      throw Error(ErrorCode::kUsage,
                  "output " + t.output + " exists and is not an nncpp file: not replaced. To compress " +
                      "several files: nncpp c -m " + t.input + " " + t.output + "; to replace " + t.output +
                      ": nncpp c -f " + t.input + " -o " + t.output);
    if (!compress && nncpp_file)
      throw Error(ErrorCode::kUsage,
                  "output " + t.output + " is an nncpp file: not replaced by decompressed data. To " +
                      "decompress several files: nncpp d -m " + t.input + " " + t.output + "; to replace " +
                      t.output + ": nncpp d -f " + t.input + " -o " + t.output);
  }
  if (!o.stats_json.empty()) {
    if (same_file(o.stats_json, t.input) || (!t.output.empty() && same_file(o.stats_json, t.output)))
      throw Error(ErrorCode::kUsage, "--stats-json " + o.stats_json + " is the input or the output");
    if (fs::is_regular_file(o.stats_json, ec) && !o.force)
      throw Error(ErrorCode::kUsage,
                  "--stats-json " + o.stats_json + " already exists (use -f to overwrite)");
  }
}

// ---- one file -----------------------------------------------------------------------------------------

class Runner {
 public:
  // ranks: rank 0 of several (src/cli/ranks.h), or null.
  Runner(const Options& o, const std::atomic<bool>* cancel, RankGroup* ranks = nullptr)
      : o_(o), cancel_(cancel), ranks_(ranks), backend_(ranks) {}

  int run(const Task& t);
  void list_totals(bool several) const;

 private:
  void log_block(const char* verb, const BlockInfo& b, ProgressLine* progress) const;
  void code(const Task& t);
  void list(const Task& t);
  void write_stats(const Task& t, const InputFile& input, const char* command, const Stats& stats) const;
  void remove_input(const Task& t) const;
  bool show_summary(const Task& t) const {
    return o_.verbosity >= 2 || (o_.verbosity == 1 && t.output != "-");
  }

  const Options& o_;
  const std::atomic<bool>* cancel_;
  RankGroup* ranks_;
  TorchModuleBackend backend_;  // LibTorch loads when a model is first needed, not for `l` or a bad file
  std::vector<ListedFile> listed_;
};

// -v: one line per block (info messages are shown only with -v), under the progress line.
void Runner::log_block(const char* verb, const BlockInfo& b, ProgressLine* progress) const {
  if (!spdlog::should_log(spdlog::level::info)) return;
  progress->clear();
  const double raw = static_cast<double>(b.raw_bytes);
  spdlog::info(
      "block {} {}: {} bytes, {} symbols in {} streams, payload {} bytes = {:.4f} bpb (model estimate "
      "{:.4f} bpb), {:.2f} s, {:.1f} KB/s",
      b.index + 1, verb, b.raw_bytes, b.symbols, b.streams, b.payload_bytes, 8.0 * b.payload_bytes / raw,
      b.model_bits / raw, b.seconds, b.seconds > 0 ? raw / 1000.0 / b.seconds : 0.0);
}

// --stats-json: written like an output (never over the input, an existing file only with -f), and before
// --rm, so a failure here keeps the input.
void Runner::write_stats(const Task& t, const InputFile& input, const char* command,
                         const Stats& stats) const {
  if (o_.stats_json.empty()) return;
  try {
    OutputFile file(o_.stats_json, OutputPolicy{o_.force, input.regular_status(), nullptr}, cancel_);
    std::ostream out(file.buf());
    out.exceptions(std::ios::badbit);
    out << stats_json(command, stats);
    file.commit();
  } catch (const Error& e) {
    throw Error(e.code(), std::string("output ") + shown(t.output, true) + " is complete" +
                              (o_.remove_input ? ", input kept" : "") + "; --stats-json: " + e.what());
  }
}

// --rm, like gzip/xz: only for a file written to a file (never with -c or to stdout).
void Runner::remove_input(const Task& t) const {
  if (!o_.remove_input || t.input == "-" || t.output == "-") return;
  if (::unlink(t.input.c_str()) != 0)
    throw Error(ErrorCode::kIo, std::string("cannot remove the input: ") + std::strerror(errno));
}

void Runner::code(const Task& t) {
  const bool compress = o_.command == Command::kCompress;
  // Compression always builds a model: load LibTorch before any output exists. Decoding loads it once
  // the container is verified (engine.cpp, check_member), so a damaged file never costs the load.
  if (compress) backend_.loaded();
  InputFile input(t.input, cancel_);
  std::unique_ptr<OutputFile> output;
  if (o_.command != Command::kTest)
    output = std::make_unique<OutputFile>(
        t.output, OutputPolicy{o_.force, input.regular_status(), input.regular_status()}, cancel_);
  struct NullBuf : std::streambuf {
    int_type overflow(int_type ch) override { return traits_type::not_eof(ch); }
    std::streamsize xsputn(const char*, std::streamsize n) override { return n; }
  } null_buf;
  // Read and write errors are thrown by the buffers; badbit lets them through the streams.
  std::istream in(input.buf());
  std::ostream out(output ? output->buf() : &null_buf);
  in.exceptions(std::ios::badbit);
  out.exceptions(std::ios::badbit);
  ProgressLine progress(o_.verbosity > 0 && ::isatty(2));
  const char* verb = compress ? "coded" : "decoded";
  auto on_block = [this, &progress, verb](const BlockInfo& b) { log_block(verb, b, &progress); };
  auto on_progress = [&progress](const ProgressInfo& info) { progress.update(info); };

  Stats stats;
  if (compress) {
    CompressJob job;
    job.settings = o_.settings;
    job.backend = &backend_;
    job.size_hint = input.size_hint();
    job.tokenizer.max_vocab = static_cast<int>(o_.settings.codec.max_vocab);
    job.tokenizer.adaptive = !o_.vocab_fixed;
    job.detect_filter = o_.detect_filter;
    job.cancel = cancel_;
    job.profile = o_.profile;
    job.on_progress = on_progress;
    job.on_block = on_block;
    job.ranks = ranks_;
    stats = nncpp::compress(in, out, job);
  } else {
    DecompressJob job;
    job.backend = &backend_;
    job.ignore_fingerprint = o_.ignore_fingerprint;
    job.memory_limit = o_.memory_limit;
    job.cancel = cancel_;
    job.profile = o_.profile;
    job.on_progress = on_progress;
    job.on_block = on_block;
    job.ranks = ranks_;
    stats = nncpp::decompress(in, out, job);
  }
  progress.clear();
  if (output) output->commit();
  write_stats(t, input, compress ? "compress" : "decompress", stats);
  if (output) remove_input(t);

  if (o_.profile) spdlog::info("{}: {}", shown(t.input, false), describe_profile(stats));
  const uint64_t compressed = compress ? stats.output_bytes : stats.input_bytes;
  if (stats.original_bytes > 0)
    spdlog::info(
        "{}: {:.4f} bpb in the file ({} bytes for {}), {:.4f} bpb estimated by the model, {:.1f} KB/s",
        shown(t.input, false), 8.0 * compressed / stats.original_bytes, compressed, stats.original_bytes,
        stats.model_bits / stats.original_bytes,
        stats.seconds > 0 ? stats.original_bytes / 1000.0 / stats.seconds : 0.0);
  if (!show_summary(t)) return;
  // zstd's summary line: "file : 25.00% (200.00 KB => 50.00 KB, file.nncp)".
  std::string line = shown(t.input, false) + " : ";
  if (compress) {
    char ratio[32] = "--";
    if (stats.original_bytes > 0)
      std::snprintf(ratio, sizeof ratio, "%.2f%%", 100.0 * stats.output_bytes / stats.original_bytes);
    line += std::string(ratio) + " (" + human_size(stats.original_bytes) + " => " +
            human_size(stats.output_bytes) + ", " + shown(t.output, true) + ")";
  } else if (output) {
    line += human_size(stats.input_bytes) + " => " + human_size(stats.original_bytes) + ", " +
            shown(t.output, true);
  } else {
    line += "OK (" + human_size(stats.input_bytes) + " => " + human_size(stats.original_bytes) + ")";
  }
  std::fprintf(stderr, "%s\n", line.c_str());
}

void Runner::list(const Task& t) {
  InputFile input(t.input, cancel_);
  std::istream in(input.buf());
  in.exceptions(std::ios::badbit);
  ListedFile f;
  f.name = shown(t.input, false);
  f.header = read_file_header(in);
  f.compressed_bytes = input.size_hint();
  // A streamed file's header does not know the original size; its records do (a regular file only: the
  // whole container is read and verified for it).
  if (f.header.original_size == kUnknownSize && input.fd() > 0 && f.compressed_bytes != kUnknownSize) {
    std::vector<uint8_t> file(f.compressed_bytes);
    if (::pread(input.fd(), file.data(), file.size(), 0) == static_cast<ssize_t>(file.size())) {
      try {
        const std::vector<Member> members = parse_container(file.data(), file.size());
        if (!members.empty()) {
          f.header.original_size = members.front().original_bytes;
          f.size_from_end = true;
        }
      } catch (const Error&) {
        // Damaged or cut: the size stays unknown; `t` says what is wrong.
      }
    }
  }
  listed_.push_back(f);
}

int Runner::run(const Task& t) {
  try {
    check_task(o_, t);
    if (o_.command == Command::kList)
      list(t);
    else
      code(t);
    return kExitOk;
  } catch (const BackendMissing& e) {
    spdlog::error("{}: {}", shown(t.input, false), e.what());
    return kExitNoBackend;
  } catch (const Skip& s) {
    spdlog::warn("{}: {}", shown(t.input, false), s.message);
    return kExitWarning;
  } catch (const Error& e) {
    spdlog::error("{}: {}", shown(t.input, false), e.what());
    return exit_status(e.code());
  } catch (const std::bad_alloc&) {
    spdlog::error("{}: out of memory", shown(t.input, false));
    return kExitOutOfMemory;
  } catch (const std::exception& e) {
    // LibTorch reports allocation failures as c10::Error with a long backtrace: keep the first line.
    std::string message = e.what();
    message = message.substr(0, message.find('\n'));
    bool oom = false;
    for (const char* sign : {"not enough memory", "out of memory", "can't allocate memory"})
      oom = oom || message.find(sign) != std::string::npos;
    if (oom) message = "out of memory (" + message + ")";
    spdlog::error("{}: {}", shown(t.input, false), message);
    return oom ? kExitOutOfMemory : kExitError;
  }
}

void Runner::list_totals(bool several) const {
  if (o_.command != Command::kList || listed_.empty()) return;
  std::cout << describe_files(listed_, o_.json, several);
}

int run(const Options& o, const std::atomic<bool>* cancel) {
  std::vector<Task> tasks;
  try {
    tasks = plan(o);
  } catch (const Error& e) {
    spdlog::error("{}", e.what());
    return exit_status(e.code());
  }
  // Several ranks: one input; rank 0 runs it, the others serve rank 0 (src/cli/ranks.h).
  std::unique_ptr<RankRun> ranks;
  if (!o.ranks.empty()) {
    try {
      if (tasks.size() != 1) throw Error(ErrorCode::kUsage, "--ranks codes one input");
      ranks = std::make_unique<RankRun>(o.ranks, o.rank_timeout, cancel);
    } catch (const Error& e) {
      spdlog::error("{}", e.what());
      return exit_status(e.code());
    }
    if (!ranks->is_rank0()) return serve_launched_rank(*ranks, cancel);
    Runner runner(o, cancel, &ranks->group());
    int status = runner.run(tasks.front());
    // Interrupted: another rank may have stopped first (a launcher signals every rank), which fails the
    // exchange; the user's signal is the cause.
    if (status != kExitOk && cancel->load()) status = kExitInterrupted;
    if (status == kExitOk) {
      try {
        ranks->finish();
      } catch (const Error& e) {
        spdlog::error("{}", e.what());
        return exit_status(e.code());
      }
    } else if (const std::string report = ranks->workers_report(); !report.empty()) {
      spdlog::error("{}", report);
    }
    return status;
  }
  Runner runner(o, cancel);
  int status = kExitOk;
  for (const Task& t : tasks) {
    if (cancel->load()) return kExitInterrupted;  // between two files
    const int s = runner.run(t);
    if (s == kExitInterrupted) return s;  // stop at once: the user asked for it
    // The first failure decides the exit status; a warning only when nothing failed.
    if (status == kExitOk || (status == kExitWarning && s != kExitOk)) status = s;
  }
  runner.list_totals(tasks.size() > 1);
  return status;
}

}  // namespace
}  // namespace nncpp::cli

int main(int argc, char** argv) {
  using namespace nncpp::cli;
  Options options;
  // A worker started by --ranks N has no options: rank 0 sends it everything (src/cli/ranks.h).
  const bool rank_worker = is_rank_worker();
  if (!rank_worker)
    if (std::optional<int> status = parse_options(argc, argv, &options)) return *status;
  // A worker leaves Ctrl-C (sent to the whole process group) to rank 0, which ends the run and its
  // workers; other signals end it as usual, and rank 0 reports that.
  if (rank_worker) ::signal(SIGINT, SIG_IGN);
  const std::atomic<bool>* cancel = rank_worker ? nullptr : install_interrupt_handlers();
  // Training allocates megabyte-sized temporaries every segment; glibc would mmap and unmap each one and
  // the kernel would zero fresh pages every time (~8% of the run). Keep them on the heap instead.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's maximum
  mallopt(M_TRIM_THRESHOLD, 1 << 30);

  auto logger = spdlog::stderr_color_st("nncpp");
  logger->set_pattern("nncpp: %^%l%$: %v");
  logger->set_level(options.verbosity == 0   ? spdlog::level::err
                    : options.verbosity == 1 ? spdlog::level::warn
                                             : spdlog::level::debug);
  spdlog::set_default_logger(logger);
  if (rank_worker) return *run_rank_worker(cancel);
  return run(options, cancel);
}
