#include "model.hpp"

#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include "binparse.hpp"
#include "errors.hpp"

#ifdef CF_HAVE_ORT
#include <onnxruntime_c_api.h>
#endif

#ifndef CF_ORT_LIBRARY
#define CF_ORT_LIBRARY "libonnxruntime.so.1"
#endif

namespace cf {

std::string onnxruntime_library() {
  const char* env = std::getenv("CHROMAFORMER_ONNXRUNTIME");
  return env && *env ? env : CF_ORT_LIBRARY;
}

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return out;
    start = at + 1;
  }
}

bool positive_ints(const std::string& v) {
  if (v.empty()) return false;
  for (const auto& part : split(v, ',')) {
    if (part.empty() || part.size() > 18) return false;
    for (char c : part)
      if (c < '0' || c > '9') return false;
    if (std::stoll(part) <= 0) return false;
  }
  return true;
}

int env_threads() {
  const char* v = std::getenv("OMP_NUM_THREADS");
  if (!v || !*v) return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return end && *end == '\0' && n > 0 && n < 1 << 16 ? static_cast<int>(n) : 0;
}

}  // namespace

#ifdef CF_HAVE_ORT

namespace {

const OrtApi* load_api() {
  static std::once_flag once;
  static const OrtApi* api = nullptr;
  static std::string failure;
  std::call_once(once, [] {
    const std::string lib = onnxruntime_library();
    void* handle = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      failure = std::string("cannot load onnxruntime (") + dlerror() +
                "); set CHROMAFORMER_ONNXRUNTIME to the path of libonnxruntime.so";
      return;
    }
    using GetApiBase = const OrtApiBase* (*)();
    auto get = reinterpret_cast<GetApiBase>(dlsym(handle, "OrtGetApiBase"));
    const OrtApiBase* base = get ? get() : nullptr;
    api = base ? base->GetApi(ORT_API_VERSION) : nullptr;
    if (!api)
      failure = lib + ": not an onnxruntime of API version " + std::to_string(ORT_API_VERSION) +
                " or later (" + (base ? base->GetVersionString() : "no OrtGetApiBase") + ")";
  });
  if (!api) throw Error(Code::Unsupported, failure);
  return api;
}

}  // namespace

struct ModelState {
  const OrtApi* api = nullptr;
  OrtEnv* env = nullptr;
  OrtSessionOptions* options = nullptr;
  OrtSession* session = nullptr;
  OrtMemoryInfo* memory = nullptr;
  std::string input, output;
  ~ModelState() {
    if (!api) return;
    if (memory) api->ReleaseMemoryInfo(memory);
    if (session) api->ReleaseSession(session);
    if (options) api->ReleaseSessionOptions(options);
    if (env) api->ReleaseEnv(env);
  }
  // Throws an onnxruntime failure as `code` with `what` before its message, which reads
  // as onnxruntime's Python binding words it ("[ONNXRuntimeError] : 7 : INVALID_PROTOBUF :
  // ...").
  void check(OrtStatus* status, Code code, const std::string& what) const {
    if (!status) return;
    static const char* names[] = {"OK",           "FAIL",          "INVALID_ARGUMENT",
                                  "NO_SUCHFILE",  "NO_MODEL",      "ENGINE_ERROR",
                                  "RUNTIME_EXCEPTION", "INVALID_PROTOBUF", "MODEL_LOADED",
                                  "NOT_IMPLEMENTED", "INVALID_GRAPH", "EP_FAIL"};
    const int c = static_cast<int>(api->GetErrorCode(status));
    std::string msg = "[ONNXRuntimeError] : " + std::to_string(c) + " : " +
                      (c >= 0 && c < 12 ? names[c] : "UNKNOWN") + " : " +
                      api->GetErrorMessage(status);
    api->ReleaseStatus(status);
    const size_t nl = msg.find('\n');
    if (nl != std::string::npos) msg.resize(nl);
    throw Error(code, what + msg);
  }
};

Model::Model(const std::string& path, int threads, const std::string& device)
    : path_(path), state_(std::make_unique<ModelState>()) {
  if (device != "cpu" && device != "cuda")
    throw Error(Code::Argument, "--device must be cpu or cuda, got '" + device + "'");
  struct stat file;
  if (::stat(path.c_str(), &file) != 0 || !S_ISREG(file.st_mode))
    throw Error(Code::Io,
                path + ": no such model file (expected an .onnx file from chromaformer-export)");
  ModelState& s = *state_;
  s.api = load_api();
  const OrtApi* api = s.api;
  s.check(api->CreateEnv(ORT_LOGGING_LEVEL_ERROR, "chromaformer", &s.env), Code::Runtime, "onnxruntime: ");
  s.check(api->CreateSessionOptions(&s.options), Code::Runtime, "onnxruntime: ");
  // the Python scorer's plan: the budget goes to calls side by side, one thread each
  const int budget = threads > 0 ? threads : (env_threads() ? env_threads() : default_threads());
  batch_ = device == "cuda" ? kCudaBatchGenes : kBatchGenes;
  calls_ = device == "cuda" ? 1 : std::max(1, std::min(budget, kMaxCallsSideBySide));
  const int intra = device == "cuda" ? threads : std::max(1, budget / calls_);
  if (intra > 0) s.check(api->SetIntraOpNumThreads(s.options, intra), Code::Runtime, "onnxruntime: ");
  // EXTENDED, not ALL, as the Python scorer (chromaformer/scoring/session.py says why)
  s.check(api->SetSessionGraphOptimizationLevel(s.options, ORT_ENABLE_EXTENDED), Code::Runtime,
          "onnxruntime: ");
  if (device == "cuda") {
    OrtCUDAProviderOptionsV2* cuda = nullptr;
    OrtStatus* st = api->CreateCUDAProviderOptions(&cuda);
    if (!st) st = api->SessionOptionsAppendExecutionProvider_CUDA_V2(s.options, cuda);
    if (cuda) api->ReleaseCUDAProviderOptions(cuda);
    s.check(st, Code::Unsupported,
            "--device cuda: this onnxruntime (" + onnxruntime_library() +
                ") could not start its CUDA provider: ");
  }
  s.check(api->CreateSession(s.env, path.c_str(), s.options, &s.session), Code::Model,
          path + ": not a loadable ONNX model: ");
  auto release = [api](OrtStatus* x) {
    if (x) api->ReleaseStatus(x);
  };
  OrtAllocator* alloc = nullptr;
  s.check(api->GetAllocatorWithDefaultOptions(&alloc), Code::Runtime, "onnxruntime: ");
  OrtModelMetadata* md = nullptr;
  s.check(api->SessionGetModelMetadata(s.session, &md), Code::Model, path + ": ");
  int64_t nkeys = 0;
  char** keys = nullptr;
  OrtStatus* st = api->ModelMetadataGetCustomMetadataMapKeys(md, alloc, &keys, &nkeys);
  for (int64_t i = 0; !st && i < nkeys; ++i) {
    char* value = nullptr;
    st = api->ModelMetadataLookupCustomMetadataMap(md, alloc, keys[i], &value);
    if (!st && value) {
      meta_[keys[i]] = value;
      release(api->AllocatorFree(alloc, value));
    }
  }
  for (int64_t i = 0; i < nkeys; ++i) release(api->AllocatorFree(alloc, keys[i]));
  if (keys) release(api->AllocatorFree(alloc, keys));
  api->ReleaseModelMetadata(md);
  s.check(st, Code::Model, path + ": ");

  // the contract (chromaformer.contract.ModelInfo.from_metadata, check_graph)
  const auto family_it = meta_.find("family");
  const std::string family = family_it != meta_.end() ? family_it->second
                             : metadata("architecture") && std::string(metadata("architecture")) == "chromoformer"
                                 ? "chromoformer"
                                 : "bins";
  std::vector<std::string> missing;
  const bool known = family == "bins" || family == "chromoformer";
  for (const char* k : {"architecture", "marks", "outputs"})
    if (!meta_.count(k)) missing.push_back(k);
  if (family == "bins")
    for (const char* k : {"bins", "bin_size"})
      if (!meta_.count(k)) missing.push_back(k);
  if (!known || !missing.empty())
    throw Error(Code::Model, path + ": not a chromaformer model: its metadata lacks " +
                                 (missing.empty() ? std::string("a known family") : join(missing, ", ")) +
                                 " (export it with chromaformer-export)");
  if (family != "bins")
    throw Error(Code::Model, path + ": a " + family +
                                 " model; the native scorer scores the bin models (use "
                                 "chromaformer-score for this one)");
  for (const char* k : {"bins", "bin_size", "window"})
    if (meta_.count(k) && !positive_ints(meta_[k]))
      throw Error(Code::Model, path + ": metadata " + k + "=" + py_repr(meta_[k].substr(0, 40)) +
                                   ": expected a positive integer (export it with chromaformer-export)");
  const std::string task = meta_.count("task") ? meta_["task"] : "clf";
  if (task != "clf")
    throw Error(Code::Model, path + ": task " + py_repr(task) +
                                 ": the native scorer writes probabilities of clf models (use "
                                 "chromaformer-score)");
  marks_ = split(meta_["marks"], ',');
  bins_ = std::stoll(meta_["bins"]);
  bin_size_ = std::stoll(meta_["bin_size"]);
  const std::string inputs = meta_.count("inputs") && !meta_["inputs"].empty() ? meta_["inputs"]
                             : meta_.count("input") && !meta_["input"].empty()   ? meta_["input"]
                                                                                 : "counts";
  const std::string where = path + ": the graph and its metadata disagree";
  size_t n_in = 0, n_out = 0;
  s.check(api->SessionGetInputCount(s.session, &n_in), Code::Model, path + ": ");
  s.check(api->SessionGetOutputCount(s.session, &n_out), Code::Model, path + ": ");
  std::vector<std::string> ins, outs;
  for (size_t i = 0; i < n_in; ++i) {
    char* name = nullptr;
    s.check(api->SessionGetInputName(s.session, i, alloc, &name), Code::Model, path + ": ");
    ins.push_back(name);
    release(api->AllocatorFree(alloc, name));
  }
  for (size_t i = 0; i < n_out; ++i) {
    char* name = nullptr;
    s.check(api->SessionGetOutputName(s.session, i, alloc, &name), Code::Model, path + ": ");
    outs.push_back(name);
    release(api->AllocatorFree(alloc, name));
  }
  if (ins.size() != 1 || ins[0] != inputs)
    throw Error(Code::Model, where + ": graph inputs " + join(ins, ",") + ", metadata " + inputs);
  if (std::find(outs.begin(), outs.end(), "probability") == outs.end())
    throw Error(Code::Model, where + ": task=clf needs the output 'probability', the graph has " +
                                 join(outs, ","));
  OrtTypeInfo* type = nullptr;
  s.check(api->SessionGetInputTypeInfo(s.session, 0, &type), Code::Model, path + ": ");
  const OrtTensorTypeAndShapeInfo* tensor = nullptr;
  size_t dims = 0;
  std::vector<int64_t> shape;
  ONNXTensorElementDataType dtype = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  st = api->CastTypeInfoToTensorInfo(type, &tensor);
  if (!st && tensor) st = api->GetDimensionsCount(tensor, &dims);
  if (!st && tensor) {
    shape.resize(dims);
    st = api->GetDimensions(tensor, shape.data(), dims);
  }
  if (!st && tensor) st = api->GetTensorElementType(tensor, &dtype);
  api->ReleaseTypeInfo(type);
  s.check(st, Code::Model, path + ": ");
  const int64_t nmarks = static_cast<int64_t>(marks_.size());
  if (dims != 3 || (shape[1] > 0 && shape[1] != bins_) || (shape[2] > 0 && shape[2] != nmarks))
    throw Error(Code::Model, where + ": the input " + py_repr(ins[0]) + " has " +
                                 std::to_string(dims) + " dimensions; the metadata says (genes, " +
                                 std::to_string(bins_) + " bins, " + std::to_string(nmarks) +
                                 " marks)");
  if (dtype != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT)
    throw Error(Code::Model, where + ": the input " + py_repr(ins[0]) + " is not float32");
  s.input = ins[0];
  s.output = "probability";
  s.check(api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &s.memory), Code::Runtime,
          "onnxruntime: ");
}

void Model::predict(const float* counts, int64_t genes, float* out) {
  if (genes < 0) throw Error(Code::Argument, "genes: expected at least 0");
  if (genes == 0) return;
  if (!counts || !out) throw Error(Code::Argument, "counts and out must not be NULL");
  ModelState& s = *state_;
  const OrtApi* api = s.api;
  const int64_t per_gene = bins_ * static_cast<int64_t>(marks_.size());
  const int64_t calls = (genes + batch_ - 1) / batch_;
  std::vector<std::string> failures(static_cast<size_t>(calls));
  auto call = [&](int64_t c) {
    const int64_t start = c * batch_, n = std::min(batch_, genes - start);
    const int64_t shape[3] = {n, bins_, static_cast<int64_t>(marks_.size())};
    OrtValue* in = nullptr;
    OrtValue* res = nullptr;
    const char* in_name = s.input.c_str();
    const char* out_name = s.output.c_str();
    OrtStatus* st = api->CreateTensorWithDataAsOrtValue(
        s.memory, const_cast<float*>(counts + start * per_gene),
        static_cast<size_t>(n * per_gene) * sizeof(float), shape, 3,
        ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &in);
    if (!st) st = api->Run(s.session, nullptr, &in_name, &in, 1, &out_name, 1, &res);
    float* data = nullptr;
    OrtTensorTypeAndShapeInfo* info = nullptr;
    size_t count = 0;
    if (!st) st = api->GetTensorMutableData(res, reinterpret_cast<void**>(&data));
    if (!st) st = api->GetTensorTypeAndShape(res, &info);
    if (!st) st = api->GetTensorShapeElementCount(info, &count);
    if (info) api->ReleaseTensorTypeAndShapeInfo(info);
    if (st) {
      failures[static_cast<size_t>(c)] = path_ + ": onnxruntime: " + api->GetErrorMessage(st);
      api->ReleaseStatus(st);
    } else if (count != static_cast<size_t>(n)) {
      failures[static_cast<size_t>(c)] = path_ + ": the model's output 'probability' has " +
                                         std::to_string(count) + " values for " +
                                         std::to_string(n) + " genes";
    } else {
      std::memcpy(out + start, data, static_cast<size_t>(n) * sizeof(float));
    }
    if (res) api->ReleaseValue(res);
    if (in) api->ReleaseValue(in);
  };
  const int64_t workers = std::min<int64_t>(calls_, calls);
  if (workers <= 1) {
    for (int64_t c = 0; c < calls; ++c) call(c);
  } else {
    std::vector<std::thread> pool;
    std::mutex m;
    int64_t next = 0;
    for (int64_t w = 0; w < workers; ++w)
      pool.emplace_back([&] {
        while (true) {
          int64_t c;
          {
            std::lock_guard<std::mutex> lock(m);
            c = next++;
          }
          if (c >= calls) return;
          call(c);
        }
      });
    for (auto& t : pool) t.join();
  }
  for (const auto& f : failures)
    if (!f.empty()) throw Error(Code::Runtime, f);
  for (int64_t i = 0; i < genes; ++i)
    if (!(out[i] >= 0.0f && out[i] <= 1.0f)) {
      char num[32];
      std::snprintf(num, sizeof num, "%.9g", static_cast<double>(out[i]));
      throw Error(Code::Runtime, path_ + ": the model's output 'probability' is " + num +
                                     " for gene " + std::to_string(i + 1) +
                                     "; expected a probability in [0, 1]");
    }
}

#else  // built without onnxruntime's headers

struct ModelState {};

Model::Model(const std::string& path, int, const std::string&) : path_(path) {
  throw Error(Code::Unsupported,
              path + ": this chromaformer library was built without onnxruntime (configure it "
                     "with onnxruntime's headers to score models)");
}

void Model::predict(const float*, int64_t, float*) {}

#endif

Model::~Model() = default;

void Model::set_batch_genes(int64_t genes) {
  if (genes < 1 || genes > kMaxGenesPerBatch)
    throw Error(Code::Argument, "batch size: expected 1 to 16,777,216 genes per call");
  batch_ = genes;
}

const char* Model::metadata(const std::string& key) const {
  const auto it = meta_.find(key);
  return it == meta_.end() ? nullptr : it->second.c_str();
}

void Model::check_layout(const std::string& input, int64_t marks, int64_t bins) const {
  const std::string name = basename(path_);
  if (marks != static_cast<int64_t>(marks_.size()))
    throw Error(Code::Model, input + ": the file has " + std::to_string(marks) +
                                 " mark columns but " + name + " expects " +
                                 std::to_string(marks_.size()) + " (" + join(marks_, ",") +
                                 ", in that order)");
  if (bins != bins_)
    throw Error(Code::Model, input + ": genes have " + std::to_string(bins) + " bins but " + name +
                                 " expects " + std::to_string(bins_) + " bins of " +
                                 std::to_string(bin_size_) + " bp");
}

}  // namespace cf
