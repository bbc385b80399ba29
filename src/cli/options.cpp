#include "options.h"

#include <CLI/CLI.hpp>

#include <iostream>
#include <map>

#include "exit_status.h"
#include "nncpp/error.h"
#include "nncpp/presets.h"

namespace nncpp::cli {
namespace {

// Expert overrides of the level preset; unset ones keep the preset's value.
struct Overrides {
  std::optional<uint32_t> match_order, long_match_order, vocab, layers, hidden, embed, streams, segment,
      lr_decay, block_kib, min_stream, heads, ff, memory, group, retrain_period, retrain_window,
      train_max_skip, mix_models, mix_table_bits, mix_count_limit;
  std::optional<float> lr, lr_floor, beta2, grad_clip, retrain_lr, dropout, train_margin, mix_lr, mix_weight,
      mix_escape;
  std::optional<uint64_t> seed;
  std::optional<std::string> model, mix_domain, filter;
  uint32_t threads = 1;
  std::string device = "cpu";
  std::optional<std::string>
      dtype;  // default on cuda: tf32 for levels 10, 11, 13, bfloat16 for 12; else float32
  bool no_cuda_graphs = false;
  int level = kDefaultLevel;
};

void add_io_options(CLI::App* sub, Options* o, bool writes_output) {
  sub->add_flag("-r,--recursive", o->recursive, "operate on the files in the folders named, and below");
  if (!writes_output) {
    sub->add_option("files", o->files, "nncpp files ('-' = stdin)")->required();
    sub->add_flag("-f,--force", o->force, "read compressed data from a terminal");
    return;
  }
  sub->add_option(
         "files", o->files,
         "IN [OUT]: one input and its output ('-' = stdin/stdout; default OUT: IN + .nncp / IN minus "
         ".nncp); with -m, -r or more than two names: every name is an input")
      ->required();
  sub->add_option("-o,--output", o->output, "output file (one input only; '-' = stdout)");
  sub->add_flag("-m,--multiple", o->multiple, "every name is an input: `c -m a b` makes a.nncp and b.nncp");
  sub->add_flag("-c,--stdout", o->to_stdout, "write to stdout");
  sub->add_flag("-f,--force", o->force,
                "overwrite an existing output file; compress a .nncp file again; use a terminal");
  sub->add_flag("-k,--keep", "keep the input file (the default)");
  sub->add_flag("--rm", o->remove_input,
                "remove the input after the output (and --stats-json) is safely written");
  sub->add_option(
      "--stats-json", o->stats_json,
      "write run statistics as one JSON object to FILE (one input only; an existing FILE needs -f)");
  sub->add_flag("--profile", o->profile,
                "time the model's step, coding, training and retraining (in --stats-json and with -v)");
}

void add_verbosity_options(CLI::App* sub, Options* o) {
  sub->add_flag(
      "-q,--quiet", [o](int64_t) { o->verbosity = 0; }, "only errors on stderr (no summary line)");
  sub->add_flag(
      "-v,--verbose", [o](int64_t) { o->verbosity = 2; }, "more detail on stderr");
}

// c, d, t: several processes (docs/architecture.md, "Ranks"); the decoder needs as many as made the file.
void add_rank_options(CLI::App* sub, Options* o) {
  sub->add_option(
         "--ranks", o->ranks,
         "code with N processes, each its share of the streams (N >= 1; one input only), or 'env': "
         "one of torchrun's (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT); a file needs as many to decode")
      ->check([](const std::string& v) -> std::string {
        if (v == "env") return "";
        try {
          size_t used = 0;
          const long n = std::stol(v, &used);
          if (used == v.size() && n >= 1 && n <= kMaxRanks) return "";
        } catch (const std::exception&) {
        }
        return "--ranks: a number of processes (1..1024) or 'env'";
      });
  sub->add_option("--rank-timeout", o->rank_timeout,
                  "seconds a rank waits for the others in any exchange before the run fails (default 600)")
      ->check(CLI::Range(1.0, 86400.0));
}

// -T and --device choose how to compress; the decoder runs as the file says. `d` and `t` accept the two
// only to refuse them with a clear message (parse_options).
void add_runtime_options(CLI::App* sub, Overrides* ov, bool compress) {
  auto* threads = sub->add_option("-T,--threads", ov->threads,
                                  "threads for the model (recorded in the file; the decoder uses the same)")
                      ->check(CLI::Range(1u, kMaxThreads));
  auto* device = sub->add_option("--device", ov->device,
                                 "cpu, cuda or cuda:N (recorded in the file; the decoder uses the same)");
  if (!compress) {
    threads->group("");
    device->group("");
  }
}

// Names of the model families for --model.
const std::map<std::string, ModelKind> kModelNames = {
    {"lstm", ModelKind::kLstm}, {"transformer", ModelKind::kTransformer}, {"trace", ModelKind::kTrace}};

// Whole numbers >= 0: refuses "-1", which would otherwise wrap to 2^64 - 1 in an unsigned option.
const CLI::Validator kCount = CLI::Validator(
    [](std::string& value) -> std::string {
      if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos)
        return "expected a whole number >= 0, got '" + value + "'";
      return "";
    },
    "");

void add_model_options(CLI::App* sub, Overrides* ov) {
  for (int level = kMinLevel; level <= kMaxLevel; ++level) {
    std::string name = "-" + std::to_string(level);
    sub->add_flag(
           name, [ov, level](int64_t) { ov->level = level; },
           level == kDefaultLevel ? "level 5 (default)" : "level " + std::to_string(level))
        ->group("Levels (fast -1 .. -9 strong)");
  }
  sub->add_option("--level", ov->level, "level: 1..9 for the CPU (as -1..-9), 10..13 meant for a GPU")
      ->check(CLI::Range(kMinLevel, kMaxGpuLevel))
      ->group("Levels (fast -1 .. -9 strong)");
  const char* expert = "Expert settings (override the level)";
  sub->add_option("--vocab", ov->vocab,
                  "tokenizer vocabulary: 0 = bytes only, N = aim for N symbols (default: adapt to the input)")
      ->check(CLI::Range(0, 16384))
      ->group(expert);
  sub->add_option("--match-order", ov->match_order, "match model context in symbols (0 = off)")
      ->check(kCount)
      ->group(expert);
  sub->add_option("--long-match-order", ov->long_match_order,
                  "second match model's context in symbols, binary-domain mixer only (0 = off)")
      ->check(kCount)
      ->group(expert);
  sub->add_option("--model", ov->model, "model family (default: the level's)")
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            std::string name = value;
            for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            return kModelNames.count(name) ? "" : "expected lstm, transformer or trace, got '" + value + "'";
          },
          ""))
      ->type_name("lstm|transformer|trace")
      ->group(expert);
  sub->add_flag(
         "--no-cuda-graphs", ov->no_cuda_graphs,
         "CUDA: launch every op instead of replaying CUDA graphs (slower; recorded, the decoder follows)")
      ->group(expert);
  sub->add_option("--dtype", ov->dtype,
                  "float32; tf32 (CUDA: float32 with TF32 tensor-core matrix products); bfloat16 (recorded)")
      ->check(CLI::IsMember({"float32", "tf32", "bfloat16"}))
      ->group(expert);
  sub->add_option("--layers", ov->layers, "LSTM / attention layers")->check(kCount)->group(expert);
  sub->add_option("--hidden", ov->hidden, "LSTM cell width / d_model")->check(kCount)->group(expert);
  sub->add_option("--embed", ov->embed, "symbol embedding width (LSTM; TRACE: per symbol)")
      ->check(kCount)
      ->group(expert);
  sub->add_option("--heads", ov->heads, "attention heads")->check(kCount)->group(expert);
  sub->add_option("--ff", ov->ff, "feed-forward inner width (attention models)")
      ->check(kCount)
      ->group(expert);
  sub->add_option("--memory", ov->memory, "Transformer-XL memory in positions")->check(kCount)->group(expert);
  sub->add_option("--group", ov->group, "TRACE: symbols concatenated per position")
      ->check(kCount)
      ->group(expert);
  sub->add_option("--retrain-period", ov->retrain_period, "segments between retraining passes (0 = off)")
      ->check(kCount)
      ->group(expert);
  sub->add_option("--retrain-window", ov->retrain_window, "positions per stream in a retraining pass")
      ->check(kCount)
      ->group(expert);
  sub->add_option("--retrain-lr", ov->retrain_lr, "learning rate of retraining passes")->group(expert);
  sub->add_option("--dropout", ov->dropout, "dropout in retraining passes")->group(expert);
  sub->add_option("--train-skip", ov->train_max_skip,
                  "adaptive training: skip at most N stable segments in a row (0 = off)")
      ->check(kCount)
      ->group(expert);
  sub->add_option("--train-margin", ov->train_margin,
                  "adaptive training: a segment is stable within this relative loss of the average")
      ->group(expert);
  sub->add_option("--streams", ov->streams, "B: streams coded in lockstep")->check(kCount)->group(expert);
  sub->add_option("--segment", ov->segment, "T: positions per training step")->check(kCount)->group(expert);
  sub->add_option("--lr", ov->lr, "initial learning rate")->group(expert);
  sub->add_option("--lr-floor", ov->lr_floor, "lowest learning rate")->group(expert);
  sub->add_option("--lr-decay", ov->lr_decay, "steps to the 1/sqrt(2) learning-rate point")
      ->check(kCount)
      ->group(expert);
  sub->add_option("--beta2", ov->beta2, "Adam second-moment decay")->group(expert);
  sub->add_option("--grad-clip", ov->grad_clip, "gradient clamp (0 = off)")->group(expert);
  sub->add_option("--seed", ov->seed, "weight initialisation seed")->check(kCount)->group(expert);
  sub->add_option("--mix-models", ov->mix_models,
                  "context models mixed with the network, a bit mask (0 = the network alone)")
      ->group(expert);
  sub->add_option("--mix-table-bits", ov->mix_table_bits, "log2 buckets per context table")->group(expert);
  sub->add_option("--mix-count-limit", ov->mix_count_limit, "count that halves a context's counts")
      ->group(expert);
  sub->add_option("--mix-lr", ov->mix_lr, "mixer learning rate")->group(expert);
  sub->add_option("--mix-weight", ov->mix_weight, "mixer starting weight of each context model")
      ->group(expert);
  sub->add_option("--mix-escape", ov->mix_escape, "context models: escape count per symbol seen")
      ->group(expert);
  sub->add_option("--mix-domain", ov->mix_domain, "mix whole distributions (symbol) or bits (binary)")
      ->check(CLI::IsMember({"symbol", "binary"}))
      ->group(expert);
  sub->add_option("--filter", ov->filter,
                  "transform before modelling: x86 (branch targets of x86 code), none, or auto (default: x86 "
                  "for ELF, PE and Mach-O x86 executables)")
      ->check(CLI::IsMember({"auto", "x86", "none"}))
      ->group(expert);
  sub->add_option("--block-size", ov->block_kib, "block size in KiB")->check(kCount)->group(expert);
  sub->add_option("--min-stream", ov->min_stream, "minimum symbols per stream")->check(kCount)->group(expert);
}

// --memlimit SIZE: bytes, or with a suffix K, M, G (KiB, MiB, GiB; "MiB" and "MB" are read alike).
void add_memlimit_option(CLI::App* sub, Options* o) {
  sub->add_option_function<std::string>(
         "--memlimit",
         [o](const std::string& text) {
           size_t end = 0;
           unsigned long long value = 0;
           try {
             value = std::stoull(text, &end);
           } catch (const std::exception&) {
             throw CLI::ValidationError("--memlimit", "not a size: " + text);
           }
           std::string unit = text.substr(end);
           int shift = -1;
           for (auto [names, s] : {std::pair<const char*, int>{",B", 0},
                                   {"K,KB,KiB,k", 10},
                                   {"M,MB,MiB", 20},
                                   {"G,GB,GiB", 30},
                                   {"T,TB,TiB", 40}}) {
             std::string list = std::string(",") + names + ",";
             if (list.find("," + unit + ",") != std::string::npos) shift = s;
           }
           if (shift < 0 || value == 0 || value > (~0ull >> shift))
             throw CLI::ValidationError("--memlimit", "not a size: " + text);
           o->memory_limit = value << shift;
         },
         "refuse files that need more memory than SIZE to decode (e.g. 2G; default: the machine's memory)")
      ->type_name("SIZE");
}

template <typename T, typename U>
void apply(const std::optional<T>& value, U* field) {
  if (value) *field = static_cast<U>(*value);
}

Settings build_settings(const Overrides& ov) {
  const bool gpu_level = ov.level >= kMinGpuLevel;
  Settings s = gpu_level ? gpu_preset(ov.level) : preset(ov.level);
  std::optional<ModelKind> model;
  if (ov.model) {
    std::string name = *ov.model;
    for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    model = kModelNames.at(name);
  }
  const bool family_changed = model && *model != s.model.kind;
  if (family_changed && gpu_level)
    throw Error(ErrorCode::kUsage, "levels 10..13 fix their model family; --model applies to levels 1..9");
  if (family_changed) s = family_preset(*model, ov.level);
  apply(ov.vocab, &s.codec.max_vocab);
  apply(ov.match_order, &s.codec.match_order);
  apply(ov.long_match_order, &s.codec.long_match_order);
  apply(ov.layers, &s.model.layers);
  apply(ov.hidden, &s.model.hidden);
  apply(ov.embed, &s.model.embed);
  apply(ov.streams, &s.model.streams);
  apply(ov.segment, &s.model.segment);
  apply(ov.lr, &s.model.lr);
  apply(ov.lr_floor, &s.model.lr_floor);
  apply(ov.lr_decay, &s.model.lr_decay);
  apply(ov.beta2, &s.model.beta2);
  apply(ov.grad_clip, &s.model.grad_clip);
  apply(ov.seed, &s.model.seed);
  apply(ov.heads, &s.model.heads);
  apply(ov.ff, &s.model.ff);
  apply(ov.memory, &s.model.memory);
  apply(ov.group, &s.model.group);
  apply(ov.retrain_period, &s.model.retrain_period);
  apply(ov.retrain_window, &s.model.retrain_window);
  apply(ov.retrain_lr, &s.model.retrain_lr);
  apply(ov.dropout, &s.model.dropout);
  apply(ov.train_max_skip, &s.model.train_max_skip);
  apply(ov.train_margin, &s.model.train_margin);
  if (ov.block_kib)
    s.codec.block_bytes =
        static_cast<uint32_t>(std::min<uint64_t>(uint64_t{*ov.block_kib} * 1024, 1ull << 31));
  apply(ov.min_stream, &s.codec.min_stream_symbols);
  apply(ov.mix_models, &s.mix.models);
  apply(ov.mix_table_bits, &s.mix.table_bits);
  apply(ov.mix_count_limit, &s.mix.count_limit);
  apply(ov.mix_lr, &s.mix.lr);
  apply(ov.mix_weight, &s.mix.initial_weight);
  apply(ov.mix_escape, &s.mix.escape);
  if (ov.mix_domain) s.mix.binary = *ov.mix_domain == "binary";
  if (ov.filter) s.codec.filter = *ov.filter == "x86" ? 1 : 0;  // not a level change: the header names it
  bool custom = ov.match_order || ov.long_match_order || ov.vocab || ov.layers || ov.hidden || ov.embed ||
                ov.streams || ov.segment || ov.lr || ov.lr_floor || ov.lr_decay || ov.beta2 || ov.grad_clip ||
                ov.seed || ov.block_kib || ov.min_stream || family_changed || ov.heads || ov.ff ||
                ov.memory || ov.group || ov.retrain_period || ov.retrain_window || ov.retrain_lr ||
                ov.dropout || ov.train_max_skip || ov.train_margin || ov.mix_models || ov.mix_table_bits ||
                ov.mix_count_limit || ov.mix_lr || ov.mix_weight || ov.mix_escape || ov.mix_domain;
  if (custom) s.level = 0;
  s.runtime.threads = ov.threads;
  s.runtime.device = ov.device;
  // GPU levels on a GPU, unless told otherwise: levels 10, 11 and 13 use TF32 tensor cores (1.24x faster
  // for level 10's size on 1 MB of enwiki, H200, bpb 2.0383 vs 2.0408); level 12 trains in bfloat16
  // (its fused step is bfloat16 with any dtype): on 1 MB of enwiki-sample.xml, H200, same run,
  // 34.8 against 32.6 KB/s and 2.2215 against 2.2221 bpb.
  const bool cuda = ov.device.rfind("cuda", 0) == 0;
  const char* gpu_dtype = ov.level == 12 ? "bfloat16" : "tf32";
  s.runtime.dtype = ov.dtype ? *ov.dtype : gpu_level && cuda ? gpu_dtype : "float32";
  s.runtime.cuda_graphs = !ov.no_cuda_graphs;
  validate(s);
  return s;
}

// A name that looks like an option ("-0", "-10") before any "--" is a mistyped option, not a file:
// returns it, or "" when every such name came after "--".
std::string option_like_name(int argc, char** argv, const std::vector<std::string>& files) {
  int end = argc;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--") {
      end = i;
      break;
    }
  for (const std::string& name : files) {
    if (name.size() < 2 || name[0] != '-') continue;
    for (int i = 1; i < end; ++i)
      if (name == argv[i]) return name;
  }
  return "";
}

}  // namespace

std::optional<int> parse_options(int argc, char** argv, Options* o) {
  CLI::App app("nncpp: lossless compression with a neural network (LSTM or Transformer) and a range coder",
               "nncpp");
  app.footer(std::string("Examples:\n"
                         "  nncpp c book.txt              writes book.txt.nncp\n"
                         "  nncpp d book.txt.nncp         writes book.txt\n"
                         "  nncpp c in out.nncp           names the output (as -o out.nncp)\n"
                         "  nncpp c -m a b c              writes a.nncp, b.nncp, c.nncp\n"
                         "  nncpp c -r folder             compresses every file in folder\n"
                         "  nncpp c -9 -T 1 in -o out.nncp --stats-json stats.json\n"
                         "  nncpp c -- -name              a file whose name starts with '-'\n\n") +
             kExitStatusHelp);
  app.require_subcommand(0, 1);
  bool version = false;
  app.add_flag("-V,--version", version, "print the version");
  Overrides ov;

  CLI::App* c = app.add_subcommand("c", "compress IN to OUT, or several files (-m, -r)");
  add_io_options(c, o, true);
  add_verbosity_options(c, o);
  add_runtime_options(c, &ov, true);
  add_model_options(c, &ov);
  add_rank_options(c, o);
  CLI::App* d = app.add_subcommand("d", "decompress IN to OUT, or several files (-m, -r)");
  add_io_options(d, o, true);
  add_verbosity_options(d, o);
  add_runtime_options(d, &ov, false);
  add_memlimit_option(d, o);
  add_rank_options(d, o);
  d->add_flag("--ignore-fingerprint", o->ignore_fingerprint,
              "decode although the file was made on another device/library/thread count (may fail)");
  CLI::App* t = app.add_subcommand("t", "test: decode each file and check it, write nothing");
  add_io_options(t, o, false);
  add_verbosity_options(t, o);
  add_runtime_options(t, &ov, false);
  add_memlimit_option(t, o);
  add_rank_options(t, o);
  CLI::App* l = app.add_subcommand("l", "list: show the header of each file (with totals for several)");
  add_io_options(l, o, false);
  l->add_flag("--json", o->json, "as JSON");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  if (version) {
    // The LibTorch version this build was made with (the backend module is not loaded for this).
    std::cout << "nncpp " << NNCPP_VERSION << " (LibTorch " << NNCPP_TORCH_VERSION << ")\n";
    return kExitOk;
  }
  if (c->parsed()) o->command = Command::kCompress;
  if (d->parsed()) o->command = Command::kDecompress;
  if (t->parsed()) o->command = Command::kTest;
  if (l->parsed()) o->command = Command::kList;
  if (o->command == Command::kNone) {
    std::cerr << app.help();
    return kExitUsage;
  }
  const std::string odd = option_like_name(argc, argv, o->files);
  if (!odd.empty()) {
    std::cerr << "nncpp: unknown option " << odd << " (levels are -1 .. -9; a file named " << odd
              << " goes after --, or as ./" << odd << ")\n";
    return kExitUsage;
  }
  for (CLI::App* sub : {d, t})
    if (sub->parsed() && (sub->count("-T") > 0 || sub->count("--device") > 0)) {
      std::cerr << "nncpp: -T and --device choose how to compress; the decoder uses the thread count and "
                   "device recorded in the file (shown by `nncpp l FILE`)\n";
      return kExitUsage;
    }
  o->vocab_fixed = ov.vocab.has_value();
  o->detect_filter = !ov.filter || *ov.filter == "auto";
  try {
    o->settings = build_settings(ov);
  } catch (const Error& e) {
    std::cerr << "nncpp: " << e.what() << "\n";
    return kExitUsage;
  }
  return std::nullopt;
}

}  // namespace nncpp::cli
