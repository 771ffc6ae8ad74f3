#include "depthbin.hpp"

#include <cmath>
#include <cstring>

namespace cf {

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t man = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while ((man & 0x400u) == 0) {
        man <<= 1;
        --exp;
      }
      man &= 0x3FFu;
      bits = sign | (exp << 23) | (man << 13);
    }
  } else if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (man << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

void bin_log_mean(const uint16_t* half, const float* f32, int64_t channels, int64_t length,
                  int64_t bin, float* out) {
  const int64_t n_bins = (length + bin - 1) / bin;
  for (int64_t c = 0; c < channels; ++c) {
    const int64_t row = c * length;
    for (int64_t b = 0; b < n_bins; ++b) {
      const int64_t lo = b * bin;
      const int64_t hi = lo + bin < length ? lo + bin : length;
      double s = 0.0;
      if (half != nullptr) {
        for (int64_t i = lo; i < hi; ++i) s += half_to_float(half[row + i]);
      } else {
        for (int64_t i = lo; i < hi; ++i) s += f32[row + i];
      }
      const float mean = static_cast<float>(s / static_cast<double>(hi - lo));
      out[c * n_bins + b] = std::log(mean + 1.0f);
    }
  }
}

}  // namespace cf
