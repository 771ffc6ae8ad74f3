// chromaformer C++ core: see binparse.hpp.
#include "binparse.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#ifndef CF_NO_ZLIB  // a build without zlib (WebAssembly) reads plain files only
#include <zlib.h>
#endif

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string_view>
#include <thread>

namespace cf {

namespace {

// Whether [p, e) is a whole number as std::from_chars reads one (decimal or scientific,
// "inf"/"infinity"/"nan" in any case, an optional '-'; no '+', spaces or hex), into d.
bool parse_number(const char* p, const char* e, double& d) {
#ifndef __EMSCRIPTEN__
  auto r = std::from_chars(p, e, d);
  return r.ec == std::errc() && r.ptr == e;
#else
  // Emscripten's libc++ has no floating-point from_chars: the same grammar, checked here,
  // then strtod (the "C" locale) on a NUL-terminated copy.
  const char* q = p;
  if (q < e && *q == '-') ++q;
  auto word = [&](const char* w) {
    size_t n = strlen(w);
    return static_cast<size_t>(e - q) == n && strncasecmp(q, w, n) == 0;
  };
  bool special = word("inf") || word("infinity") || word("nan");
  if (!special) {
    const char* digits = q;
    while (q < e && static_cast<unsigned>(*q - '0') < 10) ++q;
    size_t whole = q - digits;
    size_t frac = 0;
    if (q < e && *q == '.') {
      const char* f = ++q;
      while (q < e && static_cast<unsigned>(*q - '0') < 10) ++q;
      frac = q - f;
    }
    if (whole + frac == 0) return false;
    if (q < e && (*q == 'e' || *q == 'E')) {
      ++q;
      if (q < e && (*q == '+' || *q == '-')) ++q;
      const char* xd = q;
      while (q < e && static_cast<unsigned>(*q - '0') < 10) ++q;
      if (q == xd) return false;  // "1e" is not a number
    }
    if (q != e) return false;
  }
  std::string text(p, e);
  errno = 0;
  d = strtod(text.c_str(), nullptr);
  return special || errno != ERANGE;  // from_chars: out of range is not a number
#endif
}

std::string prefix(const std::string& path, int64_t line, int64_t column) {
  std::string s = path;
  if (line > 0) s += ":" + std::to_string(line);
  if (line > 0 && column > 0) s += ":" + std::to_string(column);
  return s + ": ";
}

// Quotes a field for a message, shortened so that one line stays one line: cut after at
// most 24 bytes on a UTF-8 character boundary, control characters written as \xNN.
std::string show(std::string_view field) {
  size_t cut = field.size();
  if (cut > 24) {
    cut = 24;
    while (cut > 0 && (static_cast<unsigned char>(field[cut]) & 0xC0) == 0x80) --cut;
  }
  std::string s = "'";
  for (size_t i = 0; i < cut; ++i) {
    auto c = static_cast<unsigned char>(field[i]);
    if (c < 0x20 || c == 0x7F) {
      static const char* hex = "0123456789abcdef";
      s += "\\x";
      s += hex[c >> 4];
      s += hex[c & 15];
    } else {
      s += static_cast<char>(c);
    }
  }
  if (cut < field.size()) s += "...";
  return s + "'";
}

// True when `s` is well-formed UTF-8 with no control characters (a tab or a NUL in a
// gene id would break the TSVs written from it).
bool clean_text(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* e = p + s.size();
  while (p < e) {
    unsigned c = *p;
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7F) return false;
      ++p;
      continue;
    }
    int n = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC2 ? 1 : -1;
    if (n < 0 || c > 0xF4 || e - p <= n) return false;
    unsigned c1 = p[1];
    if ((c1 & 0xC0) != 0x80) return false;
    if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) || (c == 0xF0 && c1 < 0x90) ||
        (c == 0xF4 && c1 > 0x8F))
      return false;  // overlong, surrogate or beyond U+10FFFF
    for (int k = 2; k <= n; ++k)
      if ((p[k] & 0xC0) != 0x80) return false;
    p += n + 1;
  }
  return true;
}

struct Error {
  int64_t line = INT64_MAX;
  int rank = 0;  // orders errors found on the same line: columns, then genes, then BinIDs
  int64_t column = 0;
  std::string message;
  bool set() const { return line != INT64_MAX; }
  bool before(const Error& o) const {
    return line < o.line || (line == o.line && rank < o.rank);
  }
};

struct Failure {
  Error error;
};

[[noreturn]] void fail(int64_t line, int rank, int64_t column, std::string message) {
  throw Failure{Error{line, rank, column, std::move(message)}};
}

struct Row {
  std::string_view id;
  int64_t bin = 0;
  int label = 0;
};

class MappedFile : public Buffer {
 public:
  MappedFile(void* p, size_t n) : p_(p), n_(n) {}
  ~MappedFile() override {
    if (p_ && n_) munmap(p_, n_);
  }
  const char* data() const override { return static_cast<const char*>(p_); }
  size_t size() const override { return n_; }

 private:
  void* p_;
  size_t n_;
};

class OwnedBuffer : public Buffer {
 public:
  explicit OwnedBuffer(std::string s) : s_(std::move(s)) {}
  const char* data() const override { return s_.data(); }
  size_t size() const override { return s_.size(); }

 private:
  std::string s_;
};

std::string mark_label(const Layout& layout, int64_t m) {
  std::string s = "field " + std::to_string(m + 3);
  // Names label the columns only when they describe this file (names for 5 marks are
  // not applied to a 7-mark file).
  if (static_cast<int64_t>(layout.mark_names.size()) == layout.marks)
    s += " (" + layout.mark_names[m] + ")";
  return s;
}

std::string columns_expected(const Layout& layout) {
  return std::to_string(layout.marks + 3) + " columns (GeneID,BinID," +
         std::to_string(layout.marks) + " mark counts,Label)";
}

std::string bins_hint(const Layout& layout) {
  return layout.bins_inferred
             ? " (bins per gene inferred from the first gene, which has " +
                   std::to_string(layout.bins) +
                   ": if that gene is the short one, the error is there; pass bins= to "
                   "require a count)"
             : "";
}

// Parses one line [p, e) (no newline, no trailing CR) into `row` and the counts.
void parse_line(const char* p, const char* e, int64_t line, const Layout& layout, float* out,
                Row& row) {
  const char* start = p;
  if (p == e) fail(line, 0, 0, "empty line (blank lines are allowed only at the end of the file)");
  const int64_t want = layout.marks + 3;
  auto field_end = [&](const char* q) {
    const void* c = memchr(q, ',', e - q);
    return c ? static_cast<const char*>(c) : e;
  };
  auto count_fields = [&]() {
    int64_t n = 1;
    for (const char* q = start; q < e; ++q) n += (*q == ',');
    return n;
  };
  auto too_few = [&]() {
    fail(line, 0, 0, "expected " + columns_expected(layout) + ", found " +
                         std::to_string(count_fields()));
  };
  // GeneID
  const char* f = field_end(p);
  if (f == p) fail(line, 0, 1, "empty GeneID (field 1)");
  if (f == e) too_few();
  row.id = std::string_view(p, f - p);
  p = f + 1;
  // BinID
  {
    const char* q = p;
    int64_t v = 0;
    while (q < e && static_cast<unsigned>(*q - '0') < 10 && q - p < 12) v = v * 10 + (*q++ - '0');
    if (q == p || (q < e && *q != ',')) {
      std::string_view text(p, field_end(p) - p);
      if (line == 1)
        fail(line, 0, p - start + 1,
             "this looks like a header row (" + show(text) +
                 " is not a BinID); the format has no header: every row is "
                 "GeneID,BinID,<counts>,Label");
      fail(line, 0, p - start + 1, "field 2 (BinID): expected an integer, got " + show(text));
    }
    if (q == e) too_few();
    row.bin = v;
    p = q + 1;
  }
  // Counts
  for (int64_t m = 0; m < layout.marks; ++m) {
    const char* q = p;
    uint64_t v = 0;
    while (q < e && static_cast<unsigned>(*q - '0') < 10 && q - p < 16) v = v * 10 + (*q++ - '0');
    if (q > p && (q == e || *q == ',')) {
      out[m] = static_cast<float>(v);
    } else {
      const char* fe = field_end(p);
      std::string_view text(p, fe - p);
      double d = 0;
      bool numeric = parse_number(p, fe, d);
      if (text.empty())
        fail(line, 0, p - start + 1,
             mark_label(layout, m) + ": empty field; expected a non-negative count");
      if (numeric && (d < 0 || std::signbit(d)))
        fail(line, 0, p - start + 1,
             mark_label(layout, m) + ": negative count " + show(text));
      if (numeric && layout.integer_counts)
        fail(line, 0, p - start + 1,
             mark_label(layout, m) + ": expected a non-negative integer count, got " +
                 show(text));
      if (numeric && std::isfinite(d) && d > std::numeric_limits<float>::max())
        fail(line, 0, p - start + 1,
             mark_label(layout, m) + ": count " + show(text) +
                 " is beyond what float32 holds (3.4e38)");
      if (!numeric || !std::isfinite(d))
        fail(line, 0, p - start + 1,
             mark_label(layout, m) + ": expected a non-negative " +
                 (layout.integer_counts ? "integer count" : "number") + ", got " + show(text));
      out[m] = static_cast<float>(d);
      q = fe;
    }
    if (q == e) too_few();
    p = q + 1;
  }
  // Label
  if (e - p == 1 && (*p == '0' || *p == '1')) {
    row.label = *p - '0';
    return;
  }
  const char* fe = field_end(p);
  if (fe != e)
    fail(line, 0, 0, "expected " + columns_expected(layout) + ", found " +
                         std::to_string(count_fields()));
  fail(line, 0, p - start + 1,
       "field " + std::to_string(want) + " (Label): expected 0 or 1, got " +
           show(std::string_view(p, fe - p)));
}

// Checks row `cur` (expected bin index `e`, 0-based) against the row before it.
void check_transition(const Row& prev, const Row& cur, int64_t e, int64_t line,
                      const Layout& layout) {
  if (e == 0) {
    if (cur.id == prev.id)
      fail(line, 1, 1, "gene '" + std::string(cur.id) + "' has more than " +
                           std::to_string(layout.bins) + " bins" + bins_hint(layout));
  } else {
    if (cur.id != prev.id)
      fail(line, 1, 1, "gene '" + std::string(prev.id) + "' has " + std::to_string(e) +
                           " bins, expected " + std::to_string(layout.bins) + " (gene '" +
                           std::string(cur.id) + "' starts here)" + bins_hint(layout));
    if (cur.label != prev.label)
      fail(line, 1, 0, "label changes inside gene '" + std::string(cur.id) + "' (from " +
                           std::to_string(prev.label) + " to " + std::to_string(cur.label) +
                           "); a gene has one label on all its rows");
  }
}

void check_bin(const Row& cur, int64_t e, int64_t line) {
  if (cur.bin != e + 1)
    fail(line, 2, 0, "BinIDs out of order in gene '" + std::string(cur.id) +
                         "': expected BinID " + std::to_string(e + 1) + ", got " +
                         std::to_string(cur.bin));
}

size_t count_newlines(const char* p, size_t n) {
  // Blocks of 255 bytes summed in 8-bit lanes: the compiler vectorises this loop.
  size_t c = 0;
  while (n) {
    size_t k = std::min<size_t>(n, 255 * 32);
    uint32_t block = 0;
    for (size_t i = 0; i < k; ++i) block += static_cast<uint8_t>(p[i] == '\n');
    c += block;
    p += k;
    n -= k;
  }
  return c;
}

// The common, valid line: integer fields, ending in '\n' or "\r\n". The caller
// guarantees a '\n' before the end of the buffer, so no bounds checks are needed.
// Returns the start of the next line, or nullptr to fall back to the checking path.
inline const char* parse_fast(const char* p, int64_t marks, float* out, Row& row) {
  const char* q = p;
  while (*q != ',' && *q != '\n') ++q;
  if (q == p || *q != ',') return nullptr;
  row.id = std::string_view(p, q - p);
  const char* s = ++q;
  uint64_t bin = 0;  // unsigned: a 25-digit BinID wraps (defined) and is rejected below
  while (static_cast<unsigned>(*q - '0') < 10) bin = bin * 10 + (*q++ - '0');
  if (q == s || *q != ',' || q - s > 12) return nullptr;
  row.bin = static_cast<int64_t>(bin);
  for (int64_t m = 0; m < marks; ++m) {
    s = ++q;
    uint32_t v = 0;
    while (static_cast<unsigned>(*q - '0') < 10) v = v * 10 + (*q++ - '0');
    if (q == s || *q != ',' || q - s > 9) return nullptr;
    out[m] = static_cast<float>(v);
  }
  ++q;
  if (*q != '0' && *q != '1') return nullptr;
  row.label = *q++ - '0';
  if (*q == '\n') return q + 1;
  if (*q == '\r' && q[1] == '\n') return q + 2;
  return nullptr;
}

template <class F>
void run_parallel(size_t n, F&& f) {
  std::vector<std::thread> pool;
  for (size_t i = 1; i < n; ++i) pool.emplace_back(f, i);
  if (n) f(0);
  for (auto& t : pool) t.join();
}

}  // namespace

FormatError::FormatError(std::string path_, int64_t line_, int64_t column_, const std::string& what)
    : std::runtime_error(prefix(path_, line_, column_) + what),
      path(std::move(path_)),
      line(line_),
      column(column_),
      reason(what) {}

Sizes& sizes() {
  static Sizes s;
  return s;
}

int default_threads() {
#ifdef __EMSCRIPTEN__
  return 1;  // no threads in a WebAssembly build without pthreads
#else
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n ? static_cast<int>(n) : 1;
#endif
}

int bounded_threads(int threads) {
  const int cores = default_threads();
  return threads > 0 ? std::min(threads, cores) : cores;
}

namespace {

// Opens a regular file for reading; returns its descriptor and size.
int open_regular(const std::string& path, size_t& size) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer before it is refused
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw FormatError(path, 0, 0, std::string("cannot open file: ") + strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    throw FormatError(path, 0, 0,
                      "cannot read: not a regular file (a FIFO, device or folder); the "
                      "readers take files, plain or gzip");
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  size = static_cast<size_t>(st.st_size);
  return fd;
}

}  // namespace

// Reads a file's bytes in blocks, inflating it when it is gzip (every member of a
// concatenated file). The one place that decides what a well-formed gzip file is, for the
// whole-file reader and the streaming one: a file cut short ("the file is truncated",
// whether in a member or in its 8-byte trailer), corrupt data or bytes after the last
// member that are not another member ("invalid gzip data: ...") are errors naming the file.
class Source {
 public:
  Source(const std::string& path, int fd)
      : path_(path), fd_(fd), in_(std::max<size_t>(1, sizes().read)) {}
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;
  ~Source() {
#ifndef CF_NO_ZLIB
    if (gzip_) inflateEnd(&zs_);
#endif
    if (fd_ >= 0) close(fd_);
  }

  // Appends at most `max` bytes of the file's content to `out`; returns how many (0: end).
  size_t read(std::string& out, size_t max) {
    if (!started_) start();
    if (!gzip_) {
      if (pos_ == len_ && !refill()) return 0;
      size_t n = std::min(max, len_ - pos_);
      out.append(reinterpret_cast<const char*>(in_.data()) + pos_, n);
      pos_ += n;
      return n;
    }
#ifdef CF_NO_ZLIB
    return 0;  // not reached: start() refuses gzip in this build
#else
    size_t old = out.size();
    out.resize(old + max);
    size_t produced = 0;
    while (produced < max && !done_) {
      if (zs_.avail_in == 0 && !refill_zs()) {
        if (member_ended_) {  // the last member ended exactly at the end of the file
          done_ = true;
          break;
        }
        if (produced) break;  // hand over what there is; the next call reports the cut
        out.resize(old);
        throw FormatError(path_, 0, 0, "invalid gzip data: the file is truncated");
      }
      if (member_ended_) {  // more bytes after a member: another member must start here
        inflateReset(&zs_);
        member_ended_ = false;
        ++members_;
      }
      zs_.next_out = reinterpret_cast<Bytef*>(&out[old + produced]);
      size_t room = std::min<size_t>(max - produced, UINT32_MAX);
      zs_.avail_out = static_cast<uInt>(room);
      int rc = inflate(&zs_, Z_NO_FLUSH);
      produced += room - zs_.avail_out;
      inflated_ += room - zs_.avail_out;
      // Bounded memory for the whole-file reader, the same verdict for both: past the
      // floor, a file may inflate to at most kMaxInflation times the bytes consumed.
      if (inflated_ > sizes().inflate_floor &&
          inflated_ / kMaxInflation > static_cast<size_t>(consumed())) {
        out.resize(old);
        throw FormatError(path_, 0, 0,
                          "invalid gzip data: it inflates more than " +
                              std::to_string(kMaxInflation) +
                              "-fold (bin CSVs compress 4-12-fold); refused as a "
                              "decompression bomb");
      }
      if (rc == Z_STREAM_END) {
        member_ended_ = true;
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        std::string msg = zs_.msg ? zs_.msg : "corrupt data";
        if (members_ > 0 && zs_.total_in <= 2)  // not even a gzip header after a member
          msg = "the bytes after the last gzip member are not gzip data";
        out.resize(old);
        throw FormatError(path_, 0, 0, "invalid gzip data: " + msg);
      }
    }
    out.resize(old + produced);
    return produced;
#endif
  }

  // Bytes of the file consumed so far (compressed bytes for gzip).
  int64_t consumed() const {
#ifdef CF_NO_ZLIB
    return static_cast<int64_t>(raw_ - (len_ - pos_));
#else
    return static_cast<int64_t>(gzip_ ? raw_ - zs_.avail_in : raw_ - (len_ - pos_));
#endif
  }

 private:
  void start() {
    started_ = true;
    refill();
    gzip_ = len_ >= 2 && in_[0] == 0x1f && in_[1] == 0x8b;
    if (!gzip_) return;
#ifdef CF_NO_ZLIB
    gzip_ = false;
    throw FormatError(path_, 0, 0,
                      "gzip data: this build of the reader has no zlib; decompress the file "
                      "first");
#else
    if (inflateInit2(&zs_, 15 + 16) != Z_OK) {
      gzip_ = false;
      throw FormatError(path_, 0, 0, "cannot start zlib");
    }
    zs_.next_in = in_.data();
    zs_.avail_in = static_cast<uInt>(len_);
    pos_ = len_;
#endif
  }

  bool refill() {
    ssize_t n;
    do {
      n = ::read(fd_, in_.data(), in_.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) throw FormatError(path_, 0, 0, std::string("read error: ") + strerror(errno));
    len_ = static_cast<size_t>(n);
    pos_ = 0;
    raw_ += len_;
    return n > 0;
  }

#ifndef CF_NO_ZLIB
  bool refill_zs() {
    if (!refill()) return false;
    zs_.next_in = in_.data();
    zs_.avail_in = static_cast<uInt>(len_);
    pos_ = len_;
    return true;
  }
#endif

  std::string path_;
  int fd_;
  std::vector<unsigned char> in_;
  size_t len_ = 0, pos_ = 0, raw_ = 0;
  bool started_ = false, gzip_ = false, member_ended_ = false, done_ = false;
  int members_ = 0;  // members inflated before the current one
  size_t inflated_ = 0;  // bytes inflated so far, all members
#ifndef CF_NO_ZLIB
  z_stream zs_{};
#endif
};

static FormatError first_gene_too_long(const std::string& path) {
  return FormatError(path, 1, 1,
                     "the first gene runs past " + std::to_string(kMaxBins) +
                         " rows: expected its GeneID to change (a gene per block of bins rows)");
}

std::unique_ptr<Buffer> load_file(const std::string& path) {
  size_t n = 0;
  int fd = open_regular(path, n);
  if (n == 0) {
    close(fd);
    return std::make_unique<OwnedBuffer>(std::string());
  }
  void* p = mmap(nullptr, n, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (p == MAP_FAILED) throw FormatError(path, 0, 0, std::string("cannot map file: ") + strerror(errno));
  madvise(p, n, MADV_SEQUENTIAL | MADV_WILLNEED);
  auto mapped = std::make_unique<MappedFile>(p, n);
  const auto* b = reinterpret_cast<const unsigned char*>(mapped->data());
  if (n < 2 || b[0] != 0x1f || b[1] != 0x8b) return mapped;

  // gzip: inflate every member into one buffer.
  mapped.reset();
  Source src(path, open_regular(path, n));
  std::string out;
  out.reserve(std::max<size_t>(n * 4, 1 << 16));
  while (src.read(out, 16 << 20) > 0) {
  }
  return std::make_unique<OwnedBuffer>(std::move(out));
}

size_t skip_bom(const char* data, size_t len) {
  return (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) ? 3 : 0;
}

Plan make_plan(const char* data, size_t begin, size_t len, int threads, bool at_eof) {
  Plan plan;
  size_t end = len;
  if (at_eof)
    while (end > begin && (data[end - 1] == '\n' || data[end - 1] == '\r')) --end;
  plan.end = end;
  if (end == begin) return plan;
  size_t n = static_cast<size_t>(std::max(1, threads));
  // Chunks of at least 1 MiB (sizes().min_chunk): threads do not pay below that.
  n = std::max<size_t>(1, std::min(n, (end - begin) / std::max<size_t>(1, sizes().min_chunk) + 1));
  std::vector<size_t> cuts{begin};
  for (size_t i = 1; i < n; ++i) {
    size_t c = begin + (end - begin) * i / n;
    c = std::max(c, cuts.back());
    const void* nl = memchr(data + c, '\n', end - c);
    size_t cut = nl ? static_cast<const char*>(nl) - data + 1 : end;
    if (cut > cuts.back() && cut < end) cuts.push_back(cut);
  }
  cuts.push_back(end);
  plan.chunks.resize(cuts.size() - 1);
  run_parallel(plan.chunks.size(), [&](size_t i) {
    auto& c = plan.chunks[i];
    c.begin = cuts[i];
    c.end = cuts[i + 1];
    c.rows = static_cast<int64_t>(count_newlines(data + c.begin, c.end - c.begin));
    if (c.end > c.begin && data[c.end - 1] != '\n') ++c.rows;
  });
  int64_t row = 0;
  for (auto& c : plan.chunks) {
    c.first_row = row;
    row += c.rows;
  }
  plan.rows = row;
  return plan;
}

void infer_layout(const char* data, const Plan& plan, int64_t first_line, Layout& layout) {
  if (plan.chunks.empty()) return;
  const char* p = data + plan.chunks.front().begin;
  const char* end = data + plan.end;
  const char* nl = static_cast<const char*>(memchr(p, '\n', end - p));
  const char* le = nl ? nl : end;
  if (le > p && le[-1] == '\r') --le;
  if (le == p)  // the parser's own words for a blank line before the rows
    throw FormatError(layout.path, first_line, 0,
                      "empty line (blank lines are allowed only at the end of the file)");
  if (layout.marks <= 0) {
    int64_t fields = 1;
    for (const char* q = p; q < le; ++q) fields += (*q == ',');
    if (fields < 4)
      throw FormatError(layout.path, first_line, 0,
                        "expected at least 4 columns (GeneID,BinID,<one count per mark>,Label), "
                        "found " + std::to_string(fields));
    layout.marks = fields - 3;
  }
  if (layout.bins <= 0) {
    auto id_of = [](const char* q, const char* e) {
      const void* c = memchr(q, ',', e - q);
      return std::string_view(q, (c ? static_cast<const char*>(c) : e) - q);
    };
    std::string_view first = id_of(p, le);
    int64_t n = 0;
    const char* q = p;
    while (q < end) {
      const char* qn = static_cast<const char*>(memchr(q, '\n', end - q));
      const char* qe = qn ? qn : end;
      if (id_of(q, qe) != first) break;
      ++n;
      q = qn ? qn + 1 : end;
    }
    layout.bins = std::max<int64_t>(n, 1);
    layout.bins_inferred = true;
  }
}

void parse_rows(const char* data, const Plan& plan, const Layout& layout, int64_t first_line,
                const RowContext* prev, float* counts, uint8_t* labels,
                std::vector<std::string>& gene_ids) {
  const int64_t bins = layout.bins, marks = layout.marks;
  const int64_t genes = (plan.rows + bins - 1) / bins;
  gene_ids.assign(static_cast<size_t>(genes), std::string());
  struct ChunkState {
    Row first, last;
    bool any = false;
    Error error;
  };
  std::vector<ChunkState> state(plan.chunks.size());
  run_parallel(plan.chunks.size(), [&](size_t ci) {
    const auto& c = plan.chunks[ci];
    auto& st = state[ci];
    const char* p = data + c.begin;
    const char* end = data + std::min(c.end, plan.end);
    int64_t r = c.first_row;
    Row prev_row, row;
    try {
      // Every line but the chunk's last ends in '\n' inside the chunk.
      const int64_t fast_rows = c.rows - 1;
      for (int64_t k = 0; k < c.rows; ++k) {
        const int64_t line = first_line + r;
        const char* next = k < fast_rows ? parse_fast(p, marks, counts + r * marks, row) : nullptr;
        if (!next) {
          const char* nl = static_cast<const char*>(memchr(p, '\n', end - p));
          const char* le = nl ? nl : end;
          const char* lc = (le > p && le[-1] == '\r') ? le - 1 : le;
          parse_line(p, lc, line, layout, counts + r * marks, row);
          next = nl ? nl + 1 : end;
        }
        const int64_t e = r % bins;
        if (e == 0 && !clean_text(row.id))
          fail(line, 0, 1,
               "GeneID (field 1): expected UTF-8 text without tabs or control characters, "
               "got " + show(row.id));
        if (r == c.first_row) {
          st.first = row;
        } else if ((e == 0) == (row.id == prev_row.id) || row.bin != e + 1 ||
                   (e != 0 && row.label != prev_row.label)) {
          // Rare: let the checks word the error.
          check_transition(prev_row, row, e, line, layout);
          check_bin(row, e, line);
        }
        if (e == 0) {
          gene_ids[r / bins].assign(row.id.data(), row.id.size());
          labels[r / bins] = static_cast<uint8_t>(row.label);
        }
        st.any = true;
        prev_row = row;
        ++r;
        p = next;
      }
      st.last = prev_row;
    } catch (const Failure& f) {
      st.error = f.error;
    }
  });
  // Boundaries: the first row of every chunk against the row before it.
  Error best;
  for (size_t ci = 0; ci < state.size(); ++ci) {
    if (state[ci].error.set() && state[ci].error.before(best)) best = state[ci].error;
  }
  for (size_t ci = 0; ci < state.size(); ++ci) {
    const auto& st = state[ci];
    if (!st.any) continue;
    const int64_t r = plan.chunks[ci].first_row, line = first_line + r, e = r % bins;
    try {
      if (ci > 0) {
        if (!state[ci - 1].any) continue;  // the previous chunk failed earlier
        check_transition(state[ci - 1].last, st.first, e, line, layout);
      } else if (prev && prev->valid) {
        Row p{prev->gene_id, 0, prev->label};
        check_transition(p, st.first, e, line, layout);
      }
      check_bin(st.first, e, line);
    } catch (const Failure& f) {
      if (f.error.before(best)) best = f.error;
    }
  }
  // The last gene must be complete.
  if (plan.rows % bins != 0 && !state.empty() && state.back().any) {
    const Row& last = state.back().last;
    Error err{first_line + plan.rows - 1, 3, 0,
              "gene '" + std::string(last.id) + "' has " + std::to_string(plan.rows % bins) +
                  " bins, expected " + std::to_string(bins) + " (the file ends)" +
                  bins_hint(layout)};
    if (err.before(best)) best = err;
  }
  if (best.set()) throw FormatError(layout.path, best.line, best.column, best.message);
}

void check_unique_ids(const std::vector<std::string>& gene_ids, const Layout& layout,
                      int64_t first_line, std::unordered_map<std::string, int64_t>& seen,
                      size_t limit) {
  const size_t n = std::min(limit, gene_ids.size());
  seen.reserve(seen.size() + n);
  for (size_t g = 0; g < n; ++g) {
    const int64_t line = first_line + static_cast<int64_t>(g) * layout.bins;
    auto [it, inserted] = seen.emplace(gene_ids[g], line);
    if (!inserted)
      throw FormatError(layout.path, line, 1,
                        "gene '" + gene_ids[g] + "' appears again (its first block starts at line " +
                            std::to_string(it->second) + "); each gene's rows must be consecutive");
  }
}

void parse_checked(const char* data, const Plan& plan, const Layout& layout, int64_t first_line,
                   const RowContext* prev, float* counts, uint8_t* labels,
                   std::vector<std::string>& gene_ids,
                   std::unordered_map<std::string, int64_t>& seen) {
  try {
    parse_rows(data, plan, layout, first_line, prev, counts, labels, gene_ids);
  } catch (const FormatError& e) {
    // A gene id repeated before the bad line is the earlier error: report that one, as
    // the line-by-line readers do, whatever the batch or thread boundaries.
    const int64_t before = std::max<int64_t>(0, e.line - first_line);
    check_unique_ids(gene_ids, layout, first_line, seen,
                     static_cast<size_t>((before + layout.bins - 1) / layout.bins));
    throw;
  }
  check_unique_ids(gene_ids, layout, first_line, seen);
}

// ---------------------------------------------------------------- FileParser

FileParser::FileParser(const std::string& path, Layout layout, int threads)
    : layout_(std::move(layout)), threads_(bounded_threads(threads)) {
  layout_.path = path;
  buffer_ = load_file(path);
  const char* d = buffer_->data();
  size_t begin = skip_bom(d, buffer_->size());
  plan_ = make_plan(d, begin, buffer_->size(), threads_, true);
  if (plan_.rows == 0)
    throw FormatError(path, 0, 0,
                      "empty file: expected rows of GeneID,BinID,<one count per mark>,Label");
  infer_layout(d, plan_, 1, layout_);
  if (layout_.bins_inferred && layout_.bins >= kMaxBins) throw first_gene_too_long(path);
  genes_ = (plan_.rows + layout_.bins - 1) / layout_.bins;
}

void FileParser::parse(float* counts, uint8_t* labels, std::vector<std::string>& gene_ids) {
  std::unordered_map<std::string, int64_t> seen;
  parse_checked(buffer_->data(), plan_, layout_, 1, nullptr, counts, labels, gene_ids, seen);
}

// ---------------------------------------------------------------- BatchReader

BatchReader::BatchReader(const std::string& path, Layout layout, int64_t genes_per_batch,
                         int threads)
    : layout_(std::move(layout)),
      genes_per_batch_(genes_per_batch),
      threads_(bounded_threads(threads)) {
  if (genes_per_batch < 1 || genes_per_batch > kMaxGenesPerBatch)
    throw std::invalid_argument("genes_per_batch must be 1.." + std::to_string(kMaxGenesPerBatch) +
                                ", got " + std::to_string(genes_per_batch));
  layout_.path = path;
  size_t size = 0;
  src_ = std::make_unique<Source>(path, open_regular(path, size));
}

BatchReader::~BatchReader() = default;

void BatchReader::set_genes_per_batch(int64_t genes) {
  if (genes < 1 || genes > kMaxGenesPerBatch)
    throw std::invalid_argument("genes_per_batch must be 1.." + std::to_string(kMaxGenesPerBatch) +
                                ", got " + std::to_string(genes));
  genes_per_batch_ = genes;
}

bool BatchReader::fill(size_t want_lines) {
  const size_t kBlock = std::max<size_t>(1, sizes().block);
  while (!eof_ && buf_lines_ < want_lines) {
    size_t old = buf_.size();
    size_t n = src_->read(buf_, kBlock);
    bytes_read_ = src_->consumed();
    size_t lines = count_newlines(buf_.data() + old, n);
    buf_lines_ += lines;
    if (n == 0) eof_ = true;
    // Bounded memory: a row is a few dozen bytes; one without an end is not a row.
    const void* nl = lines ? memrchr(buf_.data() + old, '\n', n) : nullptr;
    open_line_ = nl ? buf_.size() - (static_cast<const char*>(nl) - buf_.data()) - 1
                    : open_line_ + n;
    if (open_line_ > kMaxLine)
      throw FormatError(layout_.path, next_line_ + static_cast<int64_t>(buf_lines_), 0,
                        "a line of more than " + std::to_string(kMaxLine >> 20) +
                            " MiB without a line end: not a row of the bin CSV");
  }
  return buf_lines_ >= want_lines;
}

void BatchReader::drop_blank_tail(size_t keep) {
  if (buf_.size() <= keep) return;
  buf_lines_ -= std::min(buf_lines_, count_newlines(buf_.data() + keep, buf_.size() - keep));
  buf_.erase(keep);
  open_line_ = 0;
}

int64_t BatchReader::prepare() {
  // Drop the previous batch.
  if (batch_bytes_) {
    buf_.erase(0, batch_bytes_);
    batch_bytes_ = 0;
  }
  size_t begin = 0;
  if (!started_) {
    // The first gene must be complete (plus one more line) to infer bins.
    fill(1);
    begin = skip_bom(buf_.data(), buf_.size());
    while (!eof_ && buf_.find_first_not_of("\r\n", begin) == std::string::npos) {
      drop_blank_tail(begin + 2);  // bounded memory: the first blank lines tell all
      fill(buf_lines_ + 1);
    }
    if (buf_.find_first_not_of("\r\n", begin) == std::string::npos)
      throw FormatError(layout_.path, 0, 0,
                        "empty file: expected rows of GeneID,BinID,<one count per mark>,Label");
    if (layout_.bins <= 0) {
      Layout probe = layout_;
      while (true) {
        Plan p = make_plan(buf_.data(), begin, buf_.size(), 1, eof_);
        probe.bins = 0;
        infer_layout(buf_.data(), p, 1, probe);
        if (probe.bins >= kMaxBins) throw first_gene_too_long(layout_.path);
        if (eof_ || probe.bins < p.rows - 1) break;
        fill(2 * buf_lines_ + 1);  // doubling: linear time overall
      }
      layout_.bins = probe.bins;
      layout_.bins_inferred = true;
    }
    if (begin) {
      buf_.erase(0, begin);
      begin = 0;
    }
  }
  int64_t lines = 0;
  if (__builtin_mul_overflow(genes_per_batch_, layout_.bins, &lines) || lines < 0)
    throw std::invalid_argument("genes_per_batch x bins overflows: " +
                                std::to_string(genes_per_batch_) + " x " +
                                std::to_string(layout_.bins));
  const size_t want = static_cast<size_t>(lines);
  bool full = fill(want);
  size_t end = buf_.size();
  if (full) {
    // End the batch after the want-th newline.
    size_t seen = 0;
    const char* p = buf_.data();
    const char* e = p + buf_.size();
    while (seen < want) {
      const void* nl = memchr(p, '\n', e - p);
      if (!nl) throw FormatError(layout_.path, 0, 0, "internal error: line count out of step");
      p = static_cast<const char*>(nl) + 1;
      ++seen;
    }
    end = p - buf_.data();
    // A blank last line may start the file's trailing blank lines: look past it.
    size_t blank = end - 1;
    while (blank > 0 && (buf_[blank - 1] == '\n' || buf_[blank - 1] == '\r')) --blank;
    if (blank < end - 1 || blank == 0) {  // blank == 0: the batch is only blank lines
      auto all_blank = [&] {
        return buf_.find_first_not_of("\r\n", blank) == std::string::npos;
      };
      while (all_blank() && !eof_) {
        // Bounded memory: a run of blank lines is kept to its first two bytes, enough
        // for the next batch to start with a blank line (and its error) if rows follow.
        drop_blank_tail(std::max(end, blank) + 2);
        fill(buf_lines_ + 1);
      }
      if (all_blank()) {
        full = false;
        end = buf_.size();
      }
    }
  }
  plan_ = make_plan(buf_.data(), begin, end, threads_, !full);
  if (!started_) {
    started_ = true;
    if (plan_.rows == 0)
      throw FormatError(layout_.path, 0, 0,
                        "empty file: expected rows of GeneID,BinID,<one count per mark>,Label");
    infer_layout(buf_.data(), plan_, 1, layout_);
  }
  if (plan_.rows == 0) {
    batch_bytes_ = buf_.size();
    batch_genes_ = 0;
    return 0;
  }
  batch_bytes_ = end;
  batch_genes_ = (plan_.rows + layout_.bins - 1) / layout_.bins;
  return batch_genes_;
}

void BatchReader::parse(float* counts, uint8_t* labels, std::vector<std::string>& gene_ids) {
  parse_checked(buf_.data(), plan_, layout_, next_line_, &prev_, counts, labels, gene_ids, seen_);
  // Remember the last row for the next batch's boundary checks.
  const char* d = buf_.data();
  size_t e = plan_.end;
  if (e > 0 && d[e - 1] == '\n') --e;
  size_t s = e;
  while (s > 0 && d[s - 1] != '\n') --s;
  const char* c = static_cast<const char*>(memchr(d + s, ',', e - s));
  prev_.valid = true;
  prev_.gene_id.assign(d + s, c ? c - (d + s) : e - s);
  prev_.label = labels[batch_genes_ - 1];
  // The batch's bytes leave the buffer with every line end in them (trailing blank lines
  // included; counting rows only left buf_lines_ too high, and the next batch searched
  // an empty buffer for line ends: a crash found by tests/fuzz).
  buf_lines_ -= std::min(buf_lines_, count_newlines(buf_.data(), batch_bytes_));
  next_line_ += plan_.rows;
}

}  // namespace cf
