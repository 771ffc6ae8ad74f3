// Binning of per-base read depth, as Chromoformer's inputs need it: for each channel,
// log(mean + 1) over consecutive bins of `bin` bases (the last bin may be shorter).
#pragma once

#include <cstdint>

namespace cf {

// IEEE 754 binary16 -> binary32, exact (subnormals, infinities and NaN included).
float half_to_float(uint16_t h);

// depth: channels x length, row-major, float16 bits (half) or float32 (f32; exactly one
// is non-null). out: channels x ceil(length / bin), row-major. Sums in double.
void bin_log_mean(const uint16_t* half, const float* f32, int64_t channels, int64_t length,
                  int64_t bin, float* out);

}  // namespace cf
