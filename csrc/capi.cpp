// The C interface (include/chromaformer.h) over the C++ core: every C++ exception is
// caught here and returned as a status and its one-line message.
#include "chromaformer.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "binparse.hpp"
#include "depthbin.hpp"
#include "errors.hpp"
#include "model.hpp"
#include "scores.hpp"

#ifndef CF_VERSION
#error "CF_VERSION must be defined by the build (chromaformer/_version.py)"
#endif

struct chromaformer_reader {
  std::unique_ptr<cf::BatchReader> reader;
  std::string path;
  std::vector<float> counts;
  std::vector<uint8_t> labels;
  std::vector<std::string> ids;
  std::vector<const char*> id_ptrs;
};

struct chromaformer_model {
  std::unique_ptr<cf::Model> model;
};

namespace {

void put(char* err, size_t err_len, const std::string& msg) {
  if (!err || err_len == 0) return;
  const size_t n = std::min(msg.size(), err_len - 1);
  std::memcpy(err, msg.data(), n);
  err[n] = '\0';
}

// Runs `f`, turning what it throws into a status and a message.
template <class F>
chromaformer_status guarded(char* err, size_t err_len, F&& f) {
  if (err && err_len) err[0] = '\0';
  try {
    f();
    return CHROMAFORMER_OK;
  } catch (const cf::FormatError& e) {
    put(err, err_len, e.what());
    // line 0: a file that cannot be opened or read at all
    const bool io = e.line == 0 && (e.reason.rfind("cannot open", 0) == 0 ||
                                    e.reason.rfind("cannot read", 0) == 0);
    return io ? CHROMAFORMER_ERR_IO : CHROMAFORMER_ERR_FORMAT;
  } catch (const cf::Error& e) {
    put(err, err_len, e.what());
    return static_cast<chromaformer_status>(e.code);
  } catch (const std::invalid_argument& e) {
    put(err, err_len, e.what());
    return CHROMAFORMER_ERR_ARGUMENT;
  } catch (const std::bad_alloc&) {
    put(err, err_len, "out of memory");
    return CHROMAFORMER_ERR_MEMORY;
  } catch (const std::exception& e) {
    put(err, err_len, e.what());
    return CHROMAFORMER_ERR_RUNTIME;
  } catch (...) {
    put(err, err_len, "unknown error");
    return CHROMAFORMER_ERR_RUNTIME;
  }
}

void need(bool ok, const char* what) {
  if (!ok) throw cf::Error(cf::Code::Argument, what);
}

}  // namespace

extern "C" {

const char* chromaformer_version(void) { return CF_VERSION; }

chromaformer_reader_options chromaformer_reader_options_default(void) {
  chromaformer_reader_options o;
  o.threads = 0;
  o.integer_counts = 1;
  o.mark_names = nullptr;
  o.n_mark_names = 0;
  return o;
}

chromaformer_status chromaformer_reader_open(const char* path, int64_t bins, int64_t marks,
                                             const chromaformer_reader_options* options,
                                             chromaformer_reader** out, char* err,
                                             size_t err_len) {
  return guarded(err, err_len, [&] {
    need(out != nullptr, "out: expected a place for the reader, found NULL");
    *out = nullptr;
    need(path != nullptr, "path: expected a file name, found NULL");
    constexpr int64_t kMax = int64_t{1} << 31;
    need(bins >= 0 && bins <= kMax, "bins: expected 0 (infer) to 2^31 per gene");
    need(marks >= 0 && marks <= kMax, "marks: expected 0 (infer) to 2^31");
    const chromaformer_reader_options o = options ? *options : chromaformer_reader_options_default();
    need(o.n_mark_names >= 0 && (o.n_mark_names == 0 || o.mark_names),
         "options.mark_names: expected n_mark_names names");
    cf::Layout layout;
    layout.bins = bins;
    layout.marks = marks;
    layout.integer_counts = o.integer_counts != 0;
    for (int64_t i = 0; i < o.n_mark_names; ++i) {
      need(o.mark_names[i] != nullptr, "options.mark_names: a name is NULL");
      layout.mark_names.emplace_back(o.mark_names[i]);
    }
    auto r = std::make_unique<chromaformer_reader>();
    r->path = path;
    // batches are sized per call of next(): the reader is made for the largest
    r->reader = std::make_unique<cf::BatchReader>(r->path, layout, cf::kMaxGenesPerBatch, o.threads);
    *out = r.release();
  });
}

chromaformer_status chromaformer_reader_next(chromaformer_reader* reader, int64_t max_genes,
                                             chromaformer_batch* batch, char* err,
                                             size_t err_len) {
  return guarded(err, err_len, [&] {
    need(reader != nullptr && batch != nullptr, "reader and batch must not be NULL");
    std::memset(batch, 0, sizeof *batch);
    need(max_genes >= 1 && max_genes <= cf::kMaxGenesPerBatch,
         "max_genes: expected 1 to 16,777,216 genes per batch");
    reader->reader->set_genes_per_batch(max_genes);
    const int64_t genes = reader->reader->prepare();
    batch->bins = reader->reader->bins();
    batch->marks = reader->reader->marks();
    if (genes == 0) return;
    reader->counts.resize(static_cast<size_t>(genes * batch->bins * batch->marks));
    reader->labels.resize(static_cast<size_t>(genes));
    reader->reader->parse(reader->counts.data(), reader->labels.data(), reader->ids);
    reader->id_ptrs.resize(reader->ids.size());
    for (size_t i = 0; i < reader->ids.size(); ++i) reader->id_ptrs[i] = reader->ids[i].c_str();
    batch->genes = genes;
    batch->counts = reader->counts.data();
    batch->labels = reader->labels.data();
    batch->gene_ids = reader->id_ptrs.data();
  });
}

int64_t chromaformer_reader_bins(const chromaformer_reader* reader) {
  return reader ? reader->reader->bins() : 0;
}

int64_t chromaformer_reader_marks(const chromaformer_reader* reader) {
  return reader ? reader->reader->marks() : 0;
}

int64_t chromaformer_reader_bytes_read(const chromaformer_reader* reader) {
  return reader ? reader->reader->bytes_read() : 0;
}

void chromaformer_reader_close(chromaformer_reader* reader) { delete reader; }

chromaformer_status chromaformer_write_scores(const char* path, const char* const* gene_ids,
                                              const float* values, const uint8_t* labels,
                                              int64_t n, char* err, size_t err_len) {
  return guarded(err, err_len, [&] {
    need(path != nullptr, "path: expected a file name, found NULL");
    need(n >= 0, "n: expected at least 0 genes");
    need(n == 0 || (gene_ids && values), "gene_ids and values must not be NULL");
    cf::ScoresWriter out(path, labels != nullptr);
    out.add(gene_ids, values, labels, n);
    out.commit();
  });
}

namespace {

chromaformer_status bin_depth(const uint16_t* half, const float* f32, int64_t channels,
                              int64_t length, int64_t bin, float* out, char* err,
                              size_t err_len) {
  return guarded(err, err_len, [&] {
    need(channels >= 0 && length >= 0, "channels and length: expected at least 0");
    need(bin > 0, "bin: bin sizes must be positive");
    need((half || f32 || channels * length == 0) && (out || channels == 0 || length == 0),
         "depth and out must not be NULL");
    cf::bin_log_mean(half, half ? nullptr : f32, channels, length, bin, out);
  });
}

}  // namespace

chromaformer_status chromaformer_bin_depth(const float* depth, int64_t channels, int64_t length,
                                           int64_t bin, float* out, char* err, size_t err_len) {
  static const float none = 0.0f;
  return bin_depth(nullptr, depth ? depth : &none, channels, length, bin, out, err, err_len);
}

chromaformer_status chromaformer_bin_depth_f16(const uint16_t* depth, int64_t channels,
                                               int64_t length, int64_t bin, float* out,
                                               char* err, size_t err_len) {
  if (!depth) return chromaformer_bin_depth(nullptr, channels, length, bin, out, err, err_len);
  return bin_depth(depth, nullptr, channels, length, bin, out, err, err_len);
}

chromaformer_status chromaformer_model_open(const char* onnx_path, int32_t threads,
                                            const char* provider, chromaformer_model** out,
                                            char* err, size_t err_len) {
  return guarded(err, err_len, [&] {
    need(out != nullptr, "out: expected a place for the model, found NULL");
    *out = nullptr;
    need(onnx_path != nullptr, "onnx_path: expected a file name, found NULL");
    need(threads >= 0, "threads: expected 0 (the cores) or more");
    auto m = std::make_unique<chromaformer_model>();
    m->model = std::make_unique<cf::Model>(onnx_path, threads, provider ? provider : "cpu");
    *out = m.release();
  });
}

int64_t chromaformer_model_bins(const chromaformer_model* model) {
  return model ? model->model->bins() : 0;
}

int64_t chromaformer_model_marks(const chromaformer_model* model) {
  return model ? static_cast<int64_t>(model->model->marks().size()) : 0;
}

int64_t chromaformer_model_bin_size(const chromaformer_model* model) {
  return model ? model->model->bin_size() : 0;
}

const char* chromaformer_model_metadata(const chromaformer_model* model, const char* key) {
  return model && key ? model->model->metadata(key) : nullptr;
}

chromaformer_status chromaformer_model_check_batch(const chromaformer_model* model,
                                                   const char* input_path,
                                                   const chromaformer_batch* batch,
                                                   int64_t genes_before, char* err,
                                                   size_t err_len) {
  return guarded(err, err_len, [&] {
    need(model && input_path && batch, "model, input_path and batch must not be NULL");
    need(genes_before >= 0, "genes_before: expected at least 0");
    model->model->check_layout(input_path, batch->marks, batch->bins);
    cf::check_scored_ids(input_path, batch->gene_ids, batch->genes, batch->bins, genes_before);
  });
}

chromaformer_status chromaformer_model_predict(chromaformer_model* model, const float* counts,
                                               int64_t genes, float* out, char* err,
                                               size_t err_len) {
  return guarded(err, err_len, [&] {
    need(model != nullptr, "model must not be NULL");
    model->model->predict(counts, genes, out);
  });
}

chromaformer_status chromaformer_model_set_batch(chromaformer_model* model, int64_t genes,
                                                 char* err, size_t err_len) {
  return guarded(err, err_len, [&] {
    need(model != nullptr, "model must not be NULL");
    model->model->set_batch_genes(genes);
  });
}

void chromaformer_model_close(chromaformer_model* model) { delete model; }

}  // extern "C"
