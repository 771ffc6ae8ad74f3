// chromaformer-score-native: scores bin CSVs with an exported bin model, without Python.
// Its TSV is chromaformer-score's for the same model and input; its checks and messages
// (inputs, outputs, layout records, the model's contract) are the Python scorer's.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "binparse.hpp"
#include "errors.hpp"
#include "model.hpp"
#include "scores.hpp"

namespace {

using cf::Code;
using cf::Error;

constexpr int64_t kChunkGenes = 2048;  // genes per streamed chunk (CHUNK_GENES["bins"])

const char* kUsage =
    "Usage: chromaformer-score-native INPUT... --model M.onnx [-o OUT] [--threads N]\n"
    "                                 [--device cpu|cuda] [--batch-size N] [--chunk-genes N]\n"
    "                                 [--quiet]\n"
    "\n"
    "  Score bin CSVs (plain or gzip) with an exported bin model (chromaformer-export's\n"
    "  .onnx), through onnxruntime's C API, without Python. Writes the TSV that\n"
    "  chromaformer-score writes (gene_id, probability[, label]).\n"
    "\n"
    "  INPUT...          bin CSVs to score\n"
    "  --model M.onnx    the exported model\n"
    "  -o, --output OUT  the TSV (one input), or a folder for several inputs; default:\n"
    "                    beside each input, NAME.scores.tsv\n"
    "  --threads N       threads (default: OMP_NUM_THREADS, else the cores)\n"
    "  --device D        cpu (default) or cuda (an onnxruntime built with CUDA)\n"
    "  --batch-size N    genes per onnxruntime call (default 128, 8192 on cuda)\n"
    "  --chunk-genes N   genes read and scored at a time (default 2048)\n"
    "  --quiet           no progress or summary on stderr\n"
    "  --version         print the version and exit\n"
    "\n"
    "  onnxruntime: CHROMAFORMER_ONNXRUNTIME names its library, else the one found at build\n"
    "  time.\n";

struct Options {
  std::vector<std::string> inputs;
  std::string model, output, device = "cpu";
  int threads = 0;
  int64_t chunk = kChunkGenes;
  int64_t batch = 0;  // 0: the model's default
  bool quiet = false, has_output = false;
};

int64_t parse_int(const std::string& flag, const std::string& v, int64_t lo, int64_t hi) {
  char* end = nullptr;
  errno = 0;
  const long long n = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end || errno || n < lo || n > hi)
    throw Error(Code::Argument, "Invalid value for '" + flag + "': " + cf::py_repr(v) +
                                    " is not an integer in " + std::to_string(lo) + ".." +
                                    std::to_string(hi));
  return n;
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const std::string& flag) -> std::string {
      if (i + 1 >= argc) throw Error(Code::Argument, "Option '" + flag + "' requires an argument.");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--version") {
      std::printf("chromaformer-score-native %s\n", CF_VERSION);
      std::exit(0);
    } else if (a == "--model" || a == "-m") {
      o.model = value(a);
    } else if (a == "-o" || a == "--output") {
      o.output = value(a);
      o.has_output = true;
    } else if (a == "--threads") {
      o.threads = static_cast<int>(parse_int(a, value(a), 1, 1 << 16));
    } else if (a == "--device") {
      o.device = value(a);
      if (o.device != "cpu" && o.device != "cuda")
        throw Error(Code::Argument, "Invalid value for '--device': " + cf::py_repr(o.device) +
                                        " is not one of 'cpu', 'cuda'.");
    } else if (a == "--batch-size") {
      o.batch = parse_int(a, value(a), 1, cf::kMaxGenesPerBatch);
    } else if (a == "--chunk-genes") {
      o.chunk = parse_int(a, value(a), 1, cf::kMaxGenesPerBatch);
    } else if (a == "--quiet" || a == "-q") {
      o.quiet = true;
    } else if (a == "--") {
      for (++i; i < argc; ++i) o.inputs.emplace_back(argv[i]);
    } else if (a.size() > 1 && a[0] == '-') {
      throw Error(Code::Argument, "No such option: " + a);
    } else {
      o.inputs.push_back(a);
    }
  }
  if (o.inputs.empty()) throw Error(Code::Argument, "Missing argument 'INPUT...'.");
  if (o.model.empty()) throw Error(Code::Argument, "Missing option '--model'.");
  return o;
}

bool ends_with(const std::string& s, const std::string& t) {
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

std::string strip_csv(const std::string& name) {
  for (const char* ext : {".csv.gz", ".csv", ".gz"})
    if (ends_with(name, ext)) return name.substr(0, name.size() - std::strlen(ext));
  return name;
}

std::string dirname_of(const std::string& p) {
  const size_t s = p.rfind('/');
  return s == std::string::npos ? "" : p.substr(0, s + 1);
}


bool same_file(const std::string& a, const std::string& b) {
  struct stat x, y;
  return stat(a.c_str(), &x) == 0 && stat(b.c_str(), &y) == 0 && x.st_dev == y.st_dev &&
         x.st_ino == y.st_ino;
}

bool is_dir(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// chromaformer.formats.scores.check_inputs
void check_inputs(const std::vector<std::string>& inputs) {
  for (const auto& name : inputs) {
    if (name == "-")
      throw Error(Code::Argument,
                  "-: reading standard input is not supported; give the path of a bin CSV "
                  "(plain or .gz), or save the stream to a file first");
    struct stat st;
    if (stat(name.c_str(), &st) != 0) throw Error(Code::Io, name + ": no such input file");
    if (S_ISDIR(st.st_mode)) throw Error(Code::Io, name + ": a folder, not an input file");
    if (!S_ISREG(st.st_mode))
      throw Error(Code::Io, name +
                                ": not a regular file (a FIFO or device); the scorer reads files "
                                "(plain or .gz): save the stream to a file first");
  }
  for (size_t i = 0; i < inputs.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (same_file(inputs[i], inputs[j]))
        throw Error(Code::Argument, inputs[i] + ": the same input as " + inputs[j] + ", given twice");
}

std::vector<std::string> parts_of(const std::string& p) {
  std::vector<std::string> out;
  size_t start = 0;
  if (!p.empty() && p[0] == '/') out.push_back("/");
  while (start <= p.size()) {
    const size_t at = p.find('/', start);
    const std::string part = p.substr(start, at == std::string::npos ? std::string::npos : at - start);
    if (!part.empty() && part != ".") out.push_back(part);
    if (at == std::string::npos) break;
    start = at + 1;
  }
  return out;
}

// chromaformer.formats.scores.output_names: the shortest trailing path parts that tell the
// inputs apart
std::vector<std::string> output_names(const std::vector<std::string>& inputs) {
  for (int whole = 0; whole < 2; ++whole) {
    std::vector<std::vector<std::string>> parts;
    size_t longest = 0;
    for (const auto& s : inputs) {
      const std::string p = whole ? s : dirname_of(s) + strip_csv(cf::basename(s));
      parts.push_back(parts_of(p));
      longest = std::max(longest, parts.back().size());
    }
    for (size_t depth = 1; depth <= longest; ++depth) {
      std::vector<std::string> names;
      for (const auto& p : parts) {
        std::string n;
        for (size_t k = p.size() > depth ? p.size() - depth : 0; k < p.size(); ++k)
          n += (n.empty() ? "" : "_") + p[k];
        const size_t lead = n.find_first_not_of("_/");
        names.push_back(lead == std::string::npos ? "" : n.substr(lead));
      }
      bool distinct = true;
      for (size_t i = 0; i < names.size() && distinct; ++i)
        for (size_t j = 0; j < i; ++j)
          if (names[i] == names[j]) distinct = false;
      if (distinct) return names;
    }
  }
  throw Error(Code::Argument, inputs[0] + ": the same input is named twice");
}

// chromaformer.formats.scores.output_paths and _util.atomic.check_outputs
std::vector<std::string> output_paths(const Options& o) {
  check_inputs(o.inputs);
  std::vector<std::string> targets;
  if (!o.has_output) {
    std::vector<std::string> stems;
    for (const auto& s : o.inputs) stems.push_back(dirname_of(s) + strip_csv(cf::basename(s)) + ".scores.tsv");
    for (size_t i = 0; i < o.inputs.size(); ++i) {
      int same = 0;
      for (const auto& t : stems) same += t == stems[i];
      targets.push_back(same > 1 ? o.inputs[i] + ".scores.tsv" : stems[i]);
    }
  } else {
    const bool folder = ends_with(o.output, "/") || is_dir(o.output);
    if (o.inputs.size() == 1 && !folder) {
      targets.push_back(o.output);
    } else {
      struct stat st;
      if (stat(o.output.c_str(), &st) == 0 && !S_ISDIR(st.st_mode))
        throw Error(Code::Argument, o.output + ": several inputs need -o to be a folder, not a file");
      std::string dir = o.output;
      while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
      if (!is_dir(dir)) {
        std::string so_far;
        for (const auto& part : parts_of(dir)) {
          so_far += (so_far.empty() || so_far == "/" ? "" : "/") + part;
          if (part != "/" && !is_dir(so_far) && mkdir(so_far.c_str(), 0777) != 0)
            throw Error(Code::Io, so_far + ": " + std::strerror(errno));
        }
      }
      for (const auto& name : output_names(o.inputs)) targets.push_back(dir + "/" + name + ".scores.tsv");
    }
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    cf::check_output(targets[i]);
    struct stat st;
    const bool stream = stat(targets[i].c_str(), &st) == 0 && !S_ISREG(st.st_mode);
    if (stream) continue;
    for (const auto& in : o.inputs) {
      char* real = realpath(targets[i].c_str(), nullptr);
      const bool renamed_in = real && same_file(real, in);
      std::free(real);
      if (same_file(targets[i], in) || renamed_in)
        throw Error(Code::Argument, targets[i] + ": is the input " + in +
                                        "; refusing to overwrite an input (give another output)");
    }
    for (size_t j = 0; j < i; ++j)
      if (targets[i] == targets[j] || same_file(targets[i], targets[j]))
        throw Error(Code::Argument, targets[i] + ": named as two outputs (" + targets[j] +
                                        "); give distinct ones");
  }
  return targets;
}

std::string layout_record_path(const std::string& csv) {
  for (const char* ext : {".csv.gz", ".csv", ".gz"})
    if (ends_with(csv, ext)) return csv.substr(0, csv.size() - std::strlen(ext)) + ".layout.json";
  return csv + ".layout.json";
}

std::string json_repr(const nlohmann::json& v) {
  if (v.is_null()) return "None";
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  if (v.is_string()) return cf::py_repr(v.get<std::string>());
  return v.dump();
}

bool positive_int(const nlohmann::json& v) {
  return v.is_number_integer() && v.get<int64_t>() > 0;
}

// chromaformer.formats.sidecars.read_layout_record, check_layout_record and
// families.bins.check_record_fits: whether the file has labels (true when no record).
bool read_record(const std::string& csv, const cf::Model& model) {
  const std::string path = layout_record_path(csv);
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return true;
  std::ifstream in(path, std::ios::binary);
  nlohmann::json r;
  try {
    r = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(Code::Format, path + ": not a layout record (not JSON: " + e.what() + ")");
  }
  if (!r.is_object()) throw Error(Code::Format, path + ": not a layout record: expected a JSON object");
  for (const char* key : {"bin_size", "bins"}) {
    const bool present = r.contains(key);
    if ((std::string(key) == "bin_size" || present) && !(present && positive_int(r[key])))
      throw Error(Code::Format, path + ": " + key + ": expected a positive integer, found " +
                                    (present ? json_repr(r[key]) : "None"));
  }
  if (r.contains("marks") && !r["marks"].is_null()) {
    bool ok = r["marks"].is_array();
    if (ok)
      for (const auto& m : r["marks"]) ok = ok && m.is_string();
    if (!ok)
      throw Error(Code::Format, path + ": marks: expected a list of mark names, found " +
                                    json_repr(r["marks"]));
  }
  if (r.contains("labels") && !r["labels"].is_boolean())
    throw Error(Code::Format, path + ": labels: expected true or false, found " + json_repr(r["labels"]));
  const std::string name = cf::basename(model.path());
  const int64_t bin_size = r["bin_size"].get<int64_t>();
  const int64_t bins = r.contains("bins") ? r["bins"].get<int64_t>() : model.bins();
  if (bin_size != model.bin_size() || bins != model.bins())
    throw Error(Code::Model, csv + ": prepared as " +
                                 (r.contains("bins") ? std::to_string(bins) : std::string("?")) +
                                 " bins of " + std::to_string(bin_size) + " bp (" + path + ") but " +
                                 name + " expects " + std::to_string(model.bins()) + " bins of " +
                                 std::to_string(model.bin_size()) + " bp");
  if (r.contains("marks") && !r["marks"].is_null()) {
    std::vector<std::string> marks = r["marks"].get<std::vector<std::string>>();
    if (marks != model.marks()) {
      throw Error(Code::Model, csv + ": its mark columns are " + cf::join(marks, ",") + " (" + path +
                                   ") but " + name + " expects " + cf::join(model.marks(), ",") +
                                   ", in that order");
    }
  }
  return !r.contains("labels") || r["labels"].get<bool>();
}

struct Batch {
  int64_t genes = 0;
  std::vector<float> counts;
  std::vector<uint8_t> labels;
  std::vector<std::string> ids;
};

// One input: stream it in chunks, reading the next while this one is scored.
int64_t score_one(cf::Model& model, const std::string& input, const std::string& output,
                  const Options& o) {
  const bool labelled = read_record(input, model);
  cf::Layout layout;
  layout.integer_counts = false;  // the scorer takes any finite count, as chromaformer-score
  layout.mark_names = model.marks();
  struct stat st;
  stat(input.c_str(), &st);
  const int64_t total = st.st_size;
  cf::BatchReader reader(input, layout, o.chunk, o.threads);
  auto read = [&reader, &input, &model, &o]() {
    auto b = std::make_unique<Batch>();
    try {
      b->genes = reader.prepare();
    } catch (const cf::FormatError& e) {
      // bins inferred from a short first gene blame the next one: read again with the
      // model's bin count so that the error names the short gene
      if (std::string(e.what()).find("inferred from the first gene") == std::string::npos ||
          reader.bins() == model.bins())
        throw;
      cf::Layout again;
      again.bins = model.bins();
      again.integer_counts = false;
      again.mark_names = model.marks();
      cf::BatchReader strict(input, again, o.chunk, 1);
      std::vector<float> c;
      std::vector<uint8_t> l;
      std::vector<std::string> ids;
      while (int64_t n = strict.prepare()) {
        c.resize(static_cast<size_t>(n * strict.bins() * strict.marks()));
        l.resize(static_cast<size_t>(n));
        strict.parse(c.data(), l.data(), ids);
      }
      throw;
    }
    if (b->genes == 0) return b;
    b->counts.resize(static_cast<size_t>(b->genes * reader.bins() * reader.marks()));
    b->labels.resize(static_cast<size_t>(b->genes));
    reader.parse(b->counts.data(), b->labels.data(), b->ids);
    return b;
  };
  std::unique_ptr<cf::ScoresWriter> out;
  int64_t genes = 0;
  std::vector<float> probs;
  std::vector<const char*> ids;
  const bool tty = !o.quiet && isatty(STDERR_FILENO);
  auto next = std::async(std::launch::async, read);
  while (true) {
    std::unique_ptr<Batch> b = next.get();
    if (b->genes == 0) break;
    if (genes == 0) model.check_layout(input, reader.marks(), reader.bins());
    next = std::async(std::launch::async, read);  // the reader's next chunk, meanwhile
    ids.resize(b->ids.size());
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = b->ids[i].c_str();
    probs.resize(static_cast<size_t>(b->genes));
    try {
      cf::check_scored_ids(input, ids.data(), b->genes, reader.bins(), genes);
      model.predict(b->counts.data(), b->genes, probs.data());
    } catch (...) {
      next.wait();
      throw;
    }
    if (!out) out = std::make_unique<cf::ScoresWriter>(output, labelled);
    out->add(ids.data(), probs.data(), b->labels.data(), b->genes);
    genes += b->genes;
    if (tty)
      std::fprintf(stderr, "\r%s: %lld genes, %.0f%%", cf::basename(input).c_str(),
                   static_cast<long long>(genes),
                   total > 0 ? 100.0 * static_cast<double>(reader.bytes_read()) / total : 100.0);
  }
  if (tty) std::fputc('\n', stderr);
  if (genes == 0) throw Error(Code::Format, input + ": no genes to score");
  out->commit();
  return genes;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse_args(argc, argv);
    const std::vector<std::string> outputs = output_paths(o);
    const auto t0 = std::chrono::steady_clock::now();
    cf::Model model(o.model, o.threads, o.device);
    if (o.batch) model.set_batch_genes(o.batch);
    for (size_t i = 0; i < o.inputs.size(); ++i) {
      const auto t1 = std::chrono::steady_clock::now();
      const int64_t genes = score_one(model, o.inputs[i], outputs[i], o);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
      if (!o.quiet)
        std::fprintf(stderr, "%s: %lld genes -> %s (%.0f genes/s)\n", o.inputs[i].c_str(),
                     static_cast<long long>(genes), outputs[i].c_str(), s > 0 ? genes / s : 0.0);
    }
    (void)t0;
    return 0;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    for (char& c : msg)
      if (c == '\n') c = ' ';
    std::fprintf(stderr, "Error: %s\n", msg.c_str());
    return 1;
  }
}
