// chromaformer C++ core: strict, multi-threaded parser for histone-bin CSV files.
//
// Format (DeepChrome / AttentiveChrome benchmark): no header, one row per bin,
//   GeneID,BinID,<count per mark...>,Label
// BinIDs 1..bins consecutive per gene, label 0/1 repeated on every row of a gene.
//
// This library knows nothing of Python. The caller owns the output buffers, so a
// binding can allocate them as numpy arrays and have them filled in place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace cf {

// A violation of the format. `line` is 1-based (0 for file-level errors such as an
// unreadable file); `column` is the 1-based character column (0 when not applicable).
class FormatError : public std::runtime_error {
 public:
  FormatError(std::string path, int64_t line, int64_t column, const std::string& what);
  std::string path;
  int64_t line;
  int64_t column;
  std::string reason;  // the message without the "path:line:col: " prefix
};

// What every row of a file must look like.
struct Layout {
  std::string path;                     // for error messages only
  int64_t bins = 0;                     // rows per gene (0 = infer from the first gene)
  int64_t marks = 0;                    // count columns (0 = infer from the first line)
  bool integer_counts = true;           // reject "1.5" (the benchmark holds read counts)
  std::vector<std::string> mark_names;  // optional, for error messages
  bool bins_inferred = false;
};

// The previous row (end of the previous batch), for checks across batch boundaries.
struct RowContext {
  bool valid = false;
  std::string gene_id;
  int label = 0;
};

// Whole-file or whole-batch bytes, either memory-mapped or owned.
class Buffer {
 public:
  virtual ~Buffer() = default;
  virtual const char* data() const = 0;
  virtual size_t size() const = 0;
};

// Maps a plain file, or inflates a gzip file (detected by its magic bytes).
std::unique_ptr<Buffer> load_file(const std::string& path);

// A buffer split into line-aligned chunks with their row counts.
struct Plan {
  struct Chunk {
    size_t begin, end;  // byte range, begins at a line start
    int64_t first_row;  // row index of the chunk's first line
    int64_t rows;
  };
  std::vector<Chunk> chunks;
  int64_t rows = 0;
  size_t end = 0;  // end of data after trailing blank lines are dropped
};

// Drops a UTF-8 BOM; returns the offset of the first byte of data.
size_t skip_bom(const char* data, size_t len);

// Splits [begin, len) into about `threads` chunks and counts lines in parallel.
// Trailing blank lines are excluded when `at_eof` is true.
Plan make_plan(const char* data, size_t begin, size_t len, int threads, bool at_eof = true);

// Fills in layout.marks (from the first line) and layout.bins (from the first gene)
// where they are 0; validates them against the first line otherwise.
void infer_layout(const char* data, const Plan& plan, int64_t first_line, Layout& layout);

// Parses every row of `plan` into caller-owned buffers:
//   counts: float32[rows * marks] (row-major, i.e. (genes, bins, marks) C order)
//   labels: uint8[genes], gene_ids: resized to genes.
// Row r belongs to gene r / bins. Throws FormatError for the earliest bad line.
void parse_rows(const char* data, const Plan& plan, const Layout& layout, int64_t first_line,
                const RowContext* prev, float* counts, uint8_t* labels,
                std::vector<std::string>& gene_ids);

// Raises if a gene id occurs twice (among the first `limit` genes); `seen` maps ids to
// the line of their first row and is updated (so a streaming reader can check across
// batches).
void check_unique_ids(const std::vector<std::string>& gene_ids, const Layout& layout,
                      int64_t first_line, std::unordered_map<std::string, int64_t>& seen,
                      size_t limit = SIZE_MAX);

// parse_rows, then check_unique_ids: the error of the earliest line either way.
void parse_checked(const char* data, const Plan& plan, const Layout& layout, int64_t first_line,
                   const RowContext* prev, float* counts, uint8_t* labels,
                   std::vector<std::string>& gene_ids,
                   std::unordered_map<std::string, int64_t>& seen);

// Default worker count: the cores this process may run on.
int default_threads();

// Reads a whole file. The two-step form lets the caller allocate the outputs.
class FileParser {
 public:
  FileParser(const std::string& path, Layout layout, int threads);
  int64_t genes() const { return genes_; }
  int64_t bins() const { return layout_.bins; }
  int64_t marks() const { return layout_.marks; }
  size_t bytes() const { return buffer_->size(); }
  void parse(float* counts, uint8_t* labels, std::vector<std::string>& gene_ids);

 private:
  std::unique_ptr<Buffer> buffer_;
  Layout layout_;
  Plan plan_;
  int threads_;
  int64_t genes_ = 0;
};

// Streams a (possibly gzip) file in batches of whole genes with bounded memory.
// Sizes the readers work in, in bytes. Tests and the fuzzer shrink them so that small
// inputs reach the multi-threaded, refill and chunk-boundary paths.
struct Sizes {
  size_t min_chunk = size_t{1} << 20;  // a thread's share of a file, at least
  size_t block = size_t{4} << 20;      // the streaming reader's read size
  size_t read = size_t{1} << 20;       // raw bytes read from the file at a time
  // A gzip file may inflate to this many bytes before its compression ratio is checked
  // against kMaxInflation (so that small files of long runs of zeros stay fine).
  size_t inflate_floor = size_t{64} << 20;
};
Sizes& sizes();

// Bounds on hostile input, shared by both readers.
constexpr int64_t kMaxBins = 1000000;  // rows of the first gene when bins are inferred
constexpr int64_t kMaxGenesPerBatch = int64_t{1} << 24;  // the streaming reader's batch
// A thread count as the readers use it: 0 (or less) the cores, at most the cores.
int bounded_threads(int threads);
constexpr size_t kMaxInflation = 100;  // inflated / compressed bytes of a gzip file, at most
                                       // (bin CSVs measure 3.7-12x; a gzip bomb ~1000x)
class Source;  // binparse.cpp: a file's bytes in blocks, gzip inflated and checked

class BatchReader {
 public:
  BatchReader(const std::string& path, Layout layout, int64_t genes_per_batch, int threads);
  ~BatchReader();
  // Reads the next batch's bytes; returns its gene count (0 at the end of the file).
  int64_t prepare();
  // Parses the prepared batch into buffers sized for prepare()'s gene count.
  void parse(float* counts, uint8_t* labels, std::vector<std::string>& gene_ids);
  int64_t bins() const { return layout_.bins; }
  int64_t marks() const { return layout_.marks; }
  int64_t bytes_read() const { return bytes_read_; }
  // The size of the batches that prepare() makes from now on (1..kMaxGenesPerBatch).
  void set_genes_per_batch(int64_t genes);

 private:
  bool fill(size_t want_lines);
  // Drops the buffer past ``keep``, all of it line ends (a run of blank lines).
  void drop_blank_tail(size_t keep);
  Layout layout_;
  int64_t genes_per_batch_;
  int threads_;
  std::unique_ptr<Source> src_;  // the file's bytes, inflated when gzip
  static constexpr size_t kMaxLine = size_t{16} << 20;  // bytes of one row, at most
  size_t open_line_ = 0;  // bytes after the last line end read so far
  std::string buf_;
  size_t buf_lines_ = 0;  // complete lines in buf_
  bool eof_ = false;
  bool started_ = false;
  int64_t next_line_ = 1;
  int64_t bytes_read_ = 0;
  Plan plan_;
  size_t batch_bytes_ = 0;
  int64_t batch_genes_ = 0;
  RowContext prev_;
  std::unordered_map<std::string, int64_t> seen_;
};

// Formats rows in the benchmark format (the inverse of parsing). Counts are written
// as integers when they are whole numbers, else with the shortest exact decimal.
std::string format_rows(const float* counts, const uint8_t* labels,
                        const std::vector<std::string>& gene_ids, int64_t bins, int64_t marks);

}  // namespace cf
