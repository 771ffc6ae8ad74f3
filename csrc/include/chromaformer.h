/* chromaformer: the C interface of the bin-CSV reader, the score writer, Chromoformer's
 * depth binning and (over onnxruntime's C API) the scorer of exported bin models.
 *
 * C99, no C++ types, no exceptions across the boundary. Every call that can fail returns
 * a chromaformer_status and, where `err` is not NULL, writes the one-line message the
 * Python package gives for the same failure into `err` (at most `err_len` bytes, NUL
 * included), e.g. "genes.csv:12:3: H3K4me3: expected a count, found 'x'". Handles are
 * opaque; one handle is used by one thread at a time (different handles are
 * independent).
 *
 * Link with `pkg-config --cflags --libs chromaformer` or CMake's
 * `find_package(chromaformer)` (target chromaformer::chromaformer).
 */
#ifndef CHROMAFORMER_H
#define CHROMAFORMER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define CHROMAFORMER_API
#else
#define CHROMAFORMER_API __attribute__((visibility("default")))
#endif

typedef enum chromaformer_status {
  CHROMAFORMER_OK = 0,
  CHROMAFORMER_ERR_FORMAT = 1,      /* the input breaks the format (file:line:column) */
  CHROMAFORMER_ERR_IO = 2,          /* a file could not be opened, read or written */
  CHROMAFORMER_ERR_ARGUMENT = 3,    /* a bad argument (NULL handle, negative size...) */
  CHROMAFORMER_ERR_MEMORY = 4,      /* out of memory */
  CHROMAFORMER_ERR_MODEL = 5,       /* the model is not a chromaformer bin model, or its
                                       layout is not the input's */
  CHROMAFORMER_ERR_UNSUPPORTED = 6, /* built without it (onnxruntime), or no CUDA */
  CHROMAFORMER_ERR_RUNTIME = 7      /* onnxruntime failed while scoring */
} chromaformer_status;

/* The library's version ("0.1.0"), the Python package's. */
CHROMAFORMER_API const char* chromaformer_version(void);

/* ---- reading bin CSVs ----------------------------------------------------------------
 * The benchmark's format: no header, one row per bin, GeneID,BinID,<count per mark>,Label;
 * `bins` rows per gene, BinID 1..bins, the label repeated on each row of a gene; plain or
 * gzip (by its magic bytes). Checked as strictly as the Python reader, with its messages.
 */
typedef struct chromaformer_reader chromaformer_reader;

typedef struct chromaformer_reader_options {
  int32_t threads;               /* parsing threads; 0 = the cores this process may use */
  int32_t integer_counts;        /* non-zero: a count must be a whole number (default 1) */
  const char* const* mark_names; /* optional names of the count columns, for messages */
  int64_t n_mark_names;          /* (applied only to a file of that many marks) */
} chromaformer_reader_options;

/* The defaults: threads 0, integer_counts 1, no mark names. */
CHROMAFORMER_API chromaformer_reader_options chromaformer_reader_options_default(void);

/* A batch of whole genes. The arrays belong to the reader and stay valid until its next
 * chromaformer_reader_next or chromaformer_reader_close. */
typedef struct chromaformer_batch {
  int64_t genes;               /* 0 at the end of the file */
  int64_t bins;
  int64_t marks;
  const float* counts;         /* genes * bins * marks, C order (genes, bins, marks) */
  const uint8_t* labels;       /* genes: 0 or 1 */
  const char* const* gene_ids; /* genes NUL-terminated ids */
} chromaformer_batch;

/* Opens `path` (bins / marks: 0 = infer them from the first gene / line, as the Python
 * reader does; `options` NULL = the defaults). On success *out is the reader. */
CHROMAFORMER_API chromaformer_status chromaformer_reader_open(
    const char* path, int64_t bins, int64_t marks, const chromaformer_reader_options* options,
    chromaformer_reader** out, char* err, size_t err_len);

/* The next batch of at most `max_genes` genes (1 .. 2^24) into *batch; batch->genes is 0
 * at the end of the file. Memory stays bounded by the batch, whatever the file's size. */
CHROMAFORMER_API chromaformer_status chromaformer_reader_next(chromaformer_reader* reader,
                                                              int64_t max_genes,
                                                              chromaformer_batch* batch,
                                                              char* err, size_t err_len);

/* Bins per gene and marks of the open file (known after the first batch when inferred),
 * and the bytes of the file read so far (compressed bytes for gzip). */
CHROMAFORMER_API int64_t chromaformer_reader_bins(const chromaformer_reader* reader);
CHROMAFORMER_API int64_t chromaformer_reader_marks(const chromaformer_reader* reader);
CHROMAFORMER_API int64_t chromaformer_reader_bytes_read(const chromaformer_reader* reader);

/* Frees the reader (NULL is fine). */
CHROMAFORMER_API void chromaformer_reader_close(chromaformer_reader* reader);

/* ---- writing scores ------------------------------------------------------------------
 * The TSV chromaformer-score writes: a header "gene_id\tprobability[\tlabel]", then one
 * row per gene, the probability as printf's "%.7g", the label as 0 or 1 (no label
 * column when `labels` is NULL). Written to a temporary beside `path` and renamed into
 * place (an existing file keeps its permission bits; a symbolic link is written through;
 * a FIFO or character device is written straight into; a directory is refused).
 * A gene id that is empty, holds a comma, quote or whitespace, or starts like a
 * spreadsheet formula (= + - @), and a probability outside [0, 1], are refused. */
CHROMAFORMER_API chromaformer_status chromaformer_write_scores(const char* path,
                                                               const char* const* gene_ids,
                                                               const float* values,
                                                               const uint8_t* labels, int64_t n,
                                                               char* err, size_t err_len);

/* ---- Chromoformer's depth binning ----------------------------------------------------
 * For each of `channels` rows of per-base depth (`length` float32 values, C order):
 * log(mean + 1) over consecutive bins of `bin` bases (the last bin may be shorter),
 * summed in double, into out[channels * ceil(length / bin)]. */
CHROMAFORMER_API chromaformer_status chromaformer_bin_depth(const float* depth,
                                                            int64_t channels, int64_t length,
                                                            int64_t bin, float* out,
                                                            char* err, size_t err_len);

/* The same for float16 depth (IEEE binary16 bits), as Chromoformer's arrays store it. */
CHROMAFORMER_API chromaformer_status chromaformer_bin_depth_f16(const uint16_t* depth,
                                                                int64_t channels, int64_t length,
                                                                int64_t bin, float* out,
                                                                char* err, size_t err_len);

/* ---- scoring with an exported bin model (onnxruntime) --------------------------------
 * onnxruntime is loaded when the first model is opened: the library named by the
 * environment variable CHROMAFORMER_ONNXRUNTIME, else the one found when this library
 * was built, else "libonnxruntime.so.1" from the loader's search path. Reading needs no
 * onnxruntime at all. */
typedef struct chromaformer_model chromaformer_model;

/* Opens an exported model (chromaformer-export's .onnx) and reads its contract from its
 * metadata. `threads`: intra-op threads (0 = the cores); `provider`: "cpu" or "cuda"
 * (NULL = "cpu"). A file that is not a chromaformer bin model is refused. */
CHROMAFORMER_API chromaformer_status chromaformer_model_open(const char* onnx_path,
                                                             int32_t threads,
                                                             const char* provider,
                                                             chromaformer_model** out,
                                                             char* err, size_t err_len);

/* The model's layout: bins per gene, marks, bp per bin, and its comma-separated marks,
 * task ("clf"), architecture and output names. Strings belong to the model. */
CHROMAFORMER_API int64_t chromaformer_model_bins(const chromaformer_model* model);
CHROMAFORMER_API int64_t chromaformer_model_marks(const chromaformer_model* model);
CHROMAFORMER_API int64_t chromaformer_model_bin_size(const chromaformer_model* model);
CHROMAFORMER_API const char* chromaformer_model_metadata(const chromaformer_model* model,
                                                         const char* key);

/* Checks a batch read from `input_path` against the model before it is scored: the
 * file's marks and bins are the model's, and no gene id starts like a spreadsheet
 * formula or holds whitespace (`genes_before`: genes of the file in earlier batches, for
 * the line named). The messages are the Python scorer's. */
CHROMAFORMER_API chromaformer_status chromaformer_model_check_batch(
    const chromaformer_model* model, const char* input_path, const chromaformer_batch* batch,
    int64_t genes_before, char* err, size_t err_len);

/* Probabilities of `genes` genes of raw counts (genes * bins * marks float32, C order,
 * the model's marks and bins) into out[genes]. Runs in onnxruntime calls of at most 128
 * genes (8192 on CUDA), side by side on CPU as the thread budget allows. */
CHROMAFORMER_API chromaformer_status chromaformer_model_predict(chromaformer_model* model,
                                                                const float* counts,
                                                                int64_t genes, float* out,
                                                                char* err, size_t err_len);

/* Genes per onnxruntime call from now on (1 .. 2^24): fewer use less memory. */
CHROMAFORMER_API chromaformer_status chromaformer_model_set_batch(chromaformer_model* model,
                                                                  int64_t genes, char* err,
                                                                  size_t err_len);

/* Frees the model (NULL is fine). */
CHROMAFORMER_API void chromaformer_model_close(chromaformer_model* model);

#ifdef __cplusplus
}
#endif

#endif /* CHROMAFORMER_H */
