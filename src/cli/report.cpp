#include "report.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "nncpp/error.h"
#include "nncpp/presets.h"

namespace nncpp::cli {
namespace {

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", ch);
      out += esc;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string hex(const std::vector<uint8_t>& bytes) {
  std::string out;
  char buf[4];
  for (uint8_t b : bytes) {
    std::snprintf(buf, sizeof buf, "%02x", b);
    out += buf;
  }
  return out;
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

std::string stats_json(const char* command, const Stats& stats) {
  const Settings& settings = stats.settings;
  const uint64_t compressed = std::string(command) == "compress" ? stats.output_bytes : stats.input_bytes;
  const double bpb = stats.original_bytes > 0 ? 8.0 * compressed / stats.original_bytes : 0.0;
  std::ostringstream j;
  j << "{\"command\":" << json_string(command) << ",\"input_bytes\":" << stats.input_bytes
    << ",\"output_bytes\":" << stats.output_bytes << ",\"original_bytes\":" << stats.original_bytes
    << ",\"bpb\":" << number(bpb) << ",\"seconds\":" << number(stats.seconds)
    << ",\"kBps\":" << number(stats.seconds > 0 ? stats.original_bytes / 1000.0 / stats.seconds : 0)
    << ",\"symbols\":" << stats.symbols << ",\"blocks\":" << stats.blocks
    << ",\"dictionary_bytes\":" << stats.dictionary_bytes << ",\"model_bits\":" << number(stats.model_bits)
    << ",\"coded_bits\":" << number(stats.coded_bits) << ",\"level\":" << int{settings.level}
    << ",\"model\":" << json_string(model_kind_name(settings.model.kind))
    << ",\"device\":" << json_string(settings.runtime.device) << ",\"threads\":" << settings.runtime.threads
    << ",\"ranks\":" << settings.runtime.ranks;
  const Stats::Phases& p = stats.phases;
  if (p.step + p.code + p.train + p.retrain > 0)
    j << ",\"profile\":{\"step\":" << number(p.step) << ",\"code\":" << number(p.code)
      << ",\"train\":" << number(p.train) << ",\"retrain\":" << number(p.retrain)
      << ",\"mix\":" << number(p.mix) << "}";
  j << "}\n";
  return j.str();
}

std::string describe_profile(const Stats& stats) {
  const Stats::Phases& p = stats.phases;
  const double total = stats.seconds > 0 ? stats.seconds : 1;
  const double other = std::max(0.0, stats.seconds - p.step - p.code - p.train - p.retrain - p.mix);
  std::string text = "profile:";
  char buf[64];
  for (auto [name, s] : {std::pair<const char*, double>{"step", p.step},
                         {"code", p.code},
                         {"train", p.train},
                         {"retrain", p.retrain},
                         {"mix", p.mix},
                         {"other", other}}) {
    std::snprintf(buf, sizeof buf, " %s %.1f s (%.0f%%)", name, s, 100.0 * s / total);
    text += buf;
  }
  return text;
}

std::string describe_header(const ListedFile& file, bool json) {
  const FileHeader& h = file.header;
  const uint64_t compressed_bytes = file.compressed_bytes;
  const Settings& s = h.settings;
  const ModelSettings& m = s.model;
  const bool sizes_known = h.original_size != kUnknownSize && compressed_bytes != kUnknownSize;
  const double bpb = sizes_known && h.original_size > 0 ? 8.0 * compressed_bytes / h.original_size : 0.0;
  std::ostringstream o;
  if (json) {
    o << "{\"original_bytes\":"
      << (h.original_size == kUnknownSize ? "null" : std::to_string(h.original_size))
      << ",\"compressed_bytes\":"
      << (compressed_bytes == kUnknownSize ? "null" : std::to_string(compressed_bytes))
      << ",\"bpb\":" << (sizes_known ? number(bpb) : "null") << ",\"level\":" << int{s.level}
      << ",\"model\":" << json_string(model_kind_name(m.kind)) << ",\"vocab\":" << m.vocab
      << ",\"layers\":" << m.layers << ",\"hidden\":" << m.hidden << ",\"embed\":" << m.embed
      << ",\"streams\":" << m.streams << ",\"segment\":" << m.segment << ",\"lr\":" << number(m.lr)
      << ",\"lr_floor\":" << number(m.lr_floor) << ",\"lr_decay\":" << m.lr_decay
      << ",\"beta2\":" << number(m.beta2) << ",\"seed\":" << m.seed << ",\"heads\":" << m.heads
      << ",\"ff\":" << m.ff << ",\"memory\":" << m.memory << ",\"group\":" << m.group
      << ",\"retrain_period\":" << m.retrain_period << ",\"retrain_window\":" << m.retrain_window
      << ",\"retrain_lr\":" << number(m.retrain_lr) << ",\"dropout\":" << number(m.dropout)
      << ",\"train_max_skip\":" << m.train_max_skip << ",\"train_margin\":" << number(m.train_margin)
      << ",\"dtype\":" << json_string(s.runtime.dtype) << ",\"ranks\":" << s.runtime.ranks
      << ",\"block_bytes\":" << s.codec.block_bytes << ",\"dictionary_bytes\":" << h.dictionary.size()
      << ",\"filter\":" << json_string(s.codec.filter == 1 ? "x86" : "none")
      << ",\"fingerprint\":" << json_string(hex(h.fingerprint)) << "}\n";
    return o.str();
  }
  o << "original size    "
    << (h.original_size == kUnknownSize ? "unknown (streamed)" : std::to_string(h.original_size) + " bytes")
    << (file.size_from_end ? " (streamed; from the end record)" : "") << "\n";
  if (compressed_bytes != kUnknownSize) o << "compressed size  " << compressed_bytes << " bytes\n";
  if (sizes_known) o << "bits per byte    " << number(bpb) << "\n";
  o << "level            "
    << (s.level == 0             ? std::string("custom")
        : s.level < kMinGpuLevel ? "-" + std::to_string(s.level)
                                 : "--level " + std::to_string(s.level))
    << "\n"
    << "model            " << model_kind_name(m.kind) << " " << m.layers << "x" << m.hidden;
  if (m.kind == ModelKind::kLstm) {
    o << ", embed " << m.embed;
  } else {
    o << ", " << m.heads << " heads, ff " << m.ff << ", memory " << m.memory;
    if (m.kind == ModelKind::kTrace) o << ", group " << m.group << " x embed " << m.embed;
  }
  o << ", vocab " << m.vocab << "\n"
    << "streams/segment  " << m.streams << " x " << m.segment << "\n"
    << "training         lr " << number(m.lr) << " -> " << number(m.lr_floor) << " (decay " << m.lr_decay
    << "), beta2 " << number(m.beta2) << ", clip " << number(m.grad_clip) << "\n";
  if (m.train_max_skip > 0)
    o << "adaptive         skip <= " << m.train_max_skip << " in a row, margin " << number(m.train_margin)
      << "\n";
  if (m.retrain_period > 0)
    o << "retraining       every " << m.retrain_period << " segments, window " << m.retrain_window << ", lr "
      << number(m.retrain_lr) << ", dropout " << number(m.dropout) << "\n";
  o << "block size       " << s.codec.block_bytes << " bytes\n"
    << "dictionary       "
    << (h.dictionary.empty() ? std::string("none (bytes)") : std::to_string(h.dictionary.size()) + " bytes")
    << "\n";
  if (s.codec.filter == 1) o << "filter           x86 (branch targets)\n";
  if (s.runtime.ranks > 1)  // decoding needs as many (--ranks)
    o << "ranks            " << s.runtime.ranks << " (" << s.runtime.rank_backend << ")\n";
  o << "fingerprint      " << hex(h.fingerprint) << " (digest, docs/format.md)\n";
  return o.str();
}

std::string describe_files(const std::vector<ListedFile>& files, bool json, bool several) {
  if (!several) return describe_header(files[0], json);
  uint64_t original = 0, compressed = 0;
  size_t unknown = 0;  // files whose sizes are not both known: left out of the sums
  for (const ListedFile& f : files) {
    if (f.header.original_size == kUnknownSize || f.compressed_bytes == kUnknownSize) {
      ++unknown;
      continue;
    }
    original += f.header.original_size;
    compressed += f.compressed_bytes;
  }
  const double bpb = original > 0 ? 8.0 * compressed / original : 0.0;
  std::ostringstream o;
  if (json) {
    o << "{\"files\":[";
    for (size_t i = 0; i < files.size(); ++i) {
      std::string one = describe_header(files[i], true);  // "{...}\n"
      o << (i ? "," : "") << "{\"file\":" << json_string(files[i].name) << ","
        << one.substr(1, one.size() - 2);
    }
    o << "],\"total\":{\"files\":" << files.size() << ",\"original_bytes\":" << original
      << ",\"compressed_bytes\":" << compressed << ",\"bpb\":" << (original > 0 ? number(bpb) : "null")
      << ",\"files_of_unknown_size\":" << unknown << "}}\n";
    return o.str();
  }
  for (const ListedFile& f : files)
    o << "file             " << f.name << "\n" << describe_header(f, false) << "\n";
  o << "total            " << files.size() << (files.size() == 1 ? " file: " : " files: ") << original
    << " bytes in " << compressed << " bytes";
  if (original > 0) o << ", " << number(bpb) << " bpb";
  if (unknown > 0) o << " (" << unknown << " of unknown size left out)";
  o << "\n";
  return o.str();
}

}  // namespace nncpp::cli
