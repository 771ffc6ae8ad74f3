// The scored TSV that chromaformer-score writes, and how any output file appears: written
// to a temporary beside it and renamed into place (the rules of the Python package's
// chromaformer/_util/atomic.py).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cf {

// Why `id` cannot be a gene id of the TSV, CSV and track files, or "" when it can
// (chromaformer.layout.name_problem): empty, a comma, quote or whitespace, or a
// spreadsheet formula's first character (= + - @).
std::string gene_id_problem(const std::string& id);

// Whether `id` starts like a formula or holds ASCII whitespace (the scorer's check,
// chromaformer.layout.formula_like).
bool formula_like(const std::string& id);

// The scorer's check of a batch's gene ids read from `input` (`genes_before` genes of the
// file came before it, `bins` rows each): throws the Python scorer's error naming the
// first gene's line when an id is formula_like.
void check_scored_ids(const std::string& input, const char* const* ids, int64_t n,
                      int64_t bins, int64_t genes_before);

// Refuses an output that cannot be written as AtomicFile writes it (a directory, a block
// device, a socket) with the Python package's message.
void check_output(const std::string& path);

// An output file: bytes are appended to a private temporary; commit() renames it into
// place (a regular file, through a symbolic link, keeping an existing file's permission
// bits) or copies it into a character device or FIFO. Destroyed uncommitted, it leaves
// nothing behind.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void write(const char* data, size_t n);
  void write(const std::string& s) { write(s.data(), s.size()); }
  void commit();

 private:
  std::string path_;    // what the caller named
  std::string target_;  // the file replaced (through a symbolic link)
  std::string tmp_;
  bool stream_ = false;  // a device or FIFO: written into, never replaced
  unsigned mode_ = 0;
  int fd_ = -1;
};

// The TSV's text: "gene_id\tprobability[\tlabel]" and a row per gene ("%.7g"; labels
// NULL: no label column). Checks every id and value first.
std::string format_scores(const char* const* gene_ids, const float* values,
                          const uint8_t* labels, int64_t n, const std::string& path);

// A chunked writer of the same TSV for a streaming scorer: header on the first add().
class ScoresWriter {
 public:
  ScoresWriter(std::string path, bool labels);
  void add(const char* const* gene_ids, const float* values, const uint8_t* labels, int64_t n);
  void commit();
  int64_t rows() const { return rows_; }

 private:
  std::string path_;
  AtomicFile file_;
  bool labels_;
  int64_t rows_ = 0;
};

}  // namespace cf
