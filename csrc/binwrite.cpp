// The writer of the bin CSV (the inverse of binparse.cpp's parser): counts as integers
// when whole, else the shortest exact decimal.
#include <charconv>
#include <cmath>
#include <string>
#include <vector>

#include "binparse.hpp"

namespace cf {

std::string format_rows(const float* counts, const uint8_t* labels,
                        const std::vector<std::string>& gene_ids, int64_t bins, int64_t marks) {
  std::string out;
  const int64_t genes = static_cast<int64_t>(gene_ids.size());
  out.reserve(static_cast<size_t>(genes * bins * (16 + marks * 3)));
  char tmp[64];
  for (int64_t g = 0; g < genes; ++g) {
    for (int64_t b = 0; b < bins; ++b) {
      out += gene_ids[g];
      out += ',';
      auto r = std::to_chars(tmp, tmp + sizeof tmp, b + 1);
      out.append(tmp, r.ptr);
      const float* row = counts + (g * bins + b) * marks;
      for (int64_t m = 0; m < marks; ++m) {
        out += ',';
        float v = row[m];
        if (v == std::floor(v) && std::fabs(v) < 1e15f)
          r = std::to_chars(tmp, tmp + sizeof tmp, static_cast<int64_t>(v));
        else
          r = std::to_chars(tmp, tmp + sizeof tmp, v);
        out.append(tmp, r.ptr);
      }
      out += ',';
      out += static_cast<char>('0' + (labels[g] ? 1 : 0));
      out += '\n';
    }
  }
  return out;
}

}  // namespace cf
