// An exported bin model scored through onnxruntime's C API. onnxruntime is loaded with
// dlopen when the first model opens, so the rest of the library needs none.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace cf {

// Genes per onnxruntime call on CPU. Fewer than the Python scorer's 512: in this
// process nothing else holds memory, and onnxruntime's working set grows with the call
// (benchmarks/native.py measures it; the probabilities do not change).
constexpr int64_t kBatchGenes = 128;
constexpr int64_t kCudaBatchGenes = 8192;  // CUDA_BATCH_SIZE["bins"]
// Calls side by side on CPU, at most (MAX_CONCURRENT_RUNS of chromaformer.scoring).
constexpr int kMaxCallsSideBySide = 4;

struct ModelState;  // model.cpp: the session and its onnxruntime handles

class Model {
 public:
  // `threads`: the thread budget (0 = OMP_NUM_THREADS, else the cores), spent on calls
  // side by side first; `device`: "cpu" or "cuda".
  Model(const std::string& path, int threads, const std::string& device);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const std::string& path() const { return path_; }
  int64_t bins() const { return bins_; }
  int64_t bin_size() const { return bin_size_; }
  const std::vector<std::string>& marks() const { return marks_; }
  // A metadata value, or nullptr when the model has no such key.
  const char* metadata(const std::string& key) const;
  // The Python scorer's check of a file's layout against the model (DataError text).
  void check_layout(const std::string& input, int64_t marks, int64_t bins) const;
  // Probabilities of `genes` genes of raw counts into out[genes], in calls of at most
  // batch_genes() genes (kBatchGenes on CPU, kCudaBatchGenes on CUDA, unless set).
  void predict(const float* counts, int64_t genes, float* out);
  int64_t batch_genes() const { return batch_; }
  void set_batch_genes(int64_t genes);

 private:
  std::string path_;
  std::map<std::string, std::string> meta_;
  std::vector<std::string> marks_;
  int64_t bins_ = 0, bin_size_ = 0;
  int calls_ = 1;
  int64_t batch_ = kBatchGenes;
  std::unique_ptr<ModelState> state_;
};

// The path of the onnxruntime library the scorer loads (CHROMAFORMER_ONNXRUNTIME, else
// the one found at build time, else the loader's libonnxruntime.so.1).
std::string onnxruntime_library();

}  // namespace cf
