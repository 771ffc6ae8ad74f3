#include "scores.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

#include "errors.hpp"

namespace cf {

std::string py_repr(const std::string& s) {
  const bool single = s.find('\'') != std::string::npos;
  const char q = single && s.find('"') == std::string::npos ? '"' : '\'';
  std::string out(1, q);
  static const char* hex = "0123456789abcdef";
  for (unsigned char c : s) {
    if (c == '\\' || c == static_cast<unsigned char>(q)) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + q;
}

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i) s += (i ? sep : "") + parts[i];
  return s;
}

std::string basename(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

namespace {

bool ascii_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

bool starts_like_formula(const std::string& id) {
  return !id.empty() && (id[0] == '=' || id[0] == '+' || id[0] == '-' || id[0] == '@');
}

std::string sys_error(const std::string& path, int err) {
  return path + ": " + std::strerror(err);
}

}  // namespace

std::string gene_id_problem(const std::string& id) {
  if (id.empty()) return "an empty gene id";
  for (char c : id)
    if (c == ',' || c == '"' || ascii_space(c) || c == '\x1c' || c == '\x1d' || c == '\x1e' ||
        c == '\x1f')
      return "gene id " + py_repr(id) + " holds a comma, quote or whitespace (they separate fields)";
  if (starts_like_formula(id))
    return "gene id " + py_repr(id) + " starts with " + py_repr(id.substr(0, 1)) +
           ": a spreadsheet would run it as a formula";
  return "";
}

bool formula_like(const std::string& id) {
  if (starts_like_formula(id)) return true;
  for (char c : id)
    if (c == '\t' || c == ' ' || c == '\r' || c == '\x0b' || c == '\x0c') return true;
  return false;
}

void check_scored_ids(const std::string& input, const char* const* ids, int64_t n,
                      int64_t bins, int64_t genes_before) {
  for (int64_t i = 0; i < n; ++i) {
    const std::string id = ids[i];
    if (!formula_like(id)) continue;
    const std::string why = gene_id_problem(id);
    throw Error(Code::Format, input + ":" + std::to_string((genes_before + i) * bins + 1) + ": " +
                                  (why.empty() ? "bad gene id" : why) + ": expected a gene id");
  }
}

void check_output(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOTDIR) throw Error(Code::Io, path + ": a folder on this path is a file");
    return;  // a new name
  }
  if (S_ISREG(st.st_mode) || S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) return;
  const char* what = S_ISDIR(st.st_mode)    ? "a directory"
                     : S_ISBLK(st.st_mode)  ? "a block device"
                     : S_ISSOCK(st.st_mode) ? "a socket"
                                            : "not a regular file";
  throw Error(Code::Io, path + ": " + what +
                            "; an output must be a regular file (or a character device such as "
                            "/dev/null, or a FIFO), and it is never replaced");
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  check_output(path_);
  struct stat st;
  target_ = path_;
  if (lstat(path_.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    char* real = realpath(path_.c_str(), nullptr);
    if (real) {
      target_ = real;
      std::free(real);
    }
  }
  if (stat(target_.c_str(), &st) == 0) {
    stream_ = !S_ISREG(st.st_mode);
    mode_ = st.st_mode & 07777;
  } else {
    const mode_t mask = umask(022);
    umask(mask);
    mode_ = 0666 & ~mask;
  }
  std::string folder = ".", name = target_;
  if (stream_) {
    const char* t = std::getenv("TMPDIR");
    folder = t && *t ? t : "/tmp";
    name = "output";
  } else {
    const size_t slash = target_.rfind('/');
    if (slash != std::string::npos) {
      folder = slash == 0 ? "/" : target_.substr(0, slash);
      name = target_.substr(slash + 1);
    }
  }
  std::random_device rd;
  static const char* hex = "0123456789abcdef";
  for (int attempt = 0; attempt < 100 && fd_ < 0; ++attempt) {
    std::string r;
    for (int i = 0; i < 12; ++i) r += hex[rd() & 15];
    tmp_ = folder + "/." + name.substr(0, 200) + ".cf-native-" + std::to_string(getpid()) + "-" +
           r + ".tmp";
    fd_ = open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd_ < 0 && errno != EEXIST) throw Error(Code::Io, sys_error(path_, errno));
  }
  if (fd_ < 0) throw Error(Code::Io, path_ + ": cannot make a temporary file beside it");
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) close(fd_);
  if (!tmp_.empty()) unlink(tmp_.c_str());
}

void AtomicFile::write(const char* data, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd_, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw Error(Code::Io, sys_error(path_, errno));
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
}

void AtomicFile::commit() {
  if (close(fd_) != 0) {
    fd_ = -1;
    throw Error(Code::Io, sys_error(path_, errno));
  }
  fd_ = -1;
  if (!stream_) {
    if (chmod(tmp_.c_str(), mode_) != 0 || rename(tmp_.c_str(), target_.c_str()) != 0)
      throw Error(Code::Io, sys_error(path_, errno));
    tmp_.clear();
    return;
  }
  // a device or FIFO: copy the finished bytes into it, never replacing it
  const int in = open(tmp_.c_str(), O_RDONLY | O_CLOEXEC);
  const int out = open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (in < 0 || out < 0) {
    const int e = errno;
    if (in >= 0) close(in);
    if (out >= 0) close(out);
    throw Error(Code::Io, sys_error(path_, e));
  }
  std::vector<char> buf(1 << 20);
  ssize_t r;
  int failed = 0;
  while ((r = read(in, buf.data(), buf.size())) > 0) {
    for (ssize_t off = 0; off < r;) {
      const ssize_t w = ::write(out, buf.data() + off, static_cast<size_t>(r - off));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        failed = errno;
        break;
      }
      off += w;
    }
    if (failed) break;
  }
  if (r < 0) failed = errno;
  close(in);
  close(out);
  if (failed) throw Error(Code::Io, sys_error(path_, failed));
}

namespace {

void append_rows(std::string& out, const char* const* gene_ids, const float* values,
                 const uint8_t* labels, int64_t n, const std::string& path, int64_t before) {
  char num[32];
  for (int64_t i = 0; i < n; ++i) {
    if (!gene_ids[i]) throw Error(Code::Argument, path + ": gene id " + std::to_string(before + i + 1) + " is NULL");
    const std::string id = gene_ids[i];
    const std::string why = gene_id_problem(id);
    if (!why.empty()) throw Error(Code::Argument, path + ": gene " + std::to_string(before + i + 1) + ": " + why);
    const float v = values[i];
    if (!(v >= 0.0f && v <= 1.0f)) {
      std::snprintf(num, sizeof num, "%.7g", static_cast<double>(v));
      throw Error(Code::Argument, path + ": gene " + std::to_string(before + i + 1) + " (" + id +
                                      "): probability " + num +
                                      ": expected a probability in [0, 1]");
    }
    if (labels && labels[i] > 1)
      throw Error(Code::Argument, path + ": gene " + std::to_string(before + i + 1) + " (" + id +
                                      "): label " + std::to_string(labels[i]) + ": expected 0 or 1");
    out += id;
    out += '\t';
    out += std::string(num, std::snprintf(num, sizeof num, "%.7g", static_cast<double>(v)));
    if (labels) {
      out += '\t';
      out += static_cast<char>('0' + labels[i]);
    }
    out += '\n';
  }
}

const char* header(bool labels) {
  return labels ? "gene_id\tprobability\tlabel\n" : "gene_id\tprobability\n";
}

}  // namespace

std::string format_scores(const char* const* gene_ids, const float* values,
                          const uint8_t* labels, int64_t n, const std::string& path) {
  std::string out = header(labels != nullptr);
  append_rows(out, gene_ids, values, labels, n, path, 0);
  return out;
}

ScoresWriter::ScoresWriter(std::string path, bool labels)
    : path_(path), file_(std::move(path)), labels_(labels) {
  file_.write(header(labels_));
}

void ScoresWriter::add(const char* const* gene_ids, const float* values, const uint8_t* labels,
                       int64_t n) {
  std::string out;
  out.reserve(static_cast<size_t>(n) * 32);
  if (labels_ && !labels) throw Error(Code::Argument, path_ + ": labels are NULL");
  append_rows(out, gene_ids, values, labels_ ? labels : nullptr, n, path_, rows_);
  file_.write(out);
  rows_ += n;
}

void ScoresWriter::commit() { file_.commit(); }

}  // namespace cf
