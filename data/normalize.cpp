#include "normalize.h"

#include <algorithm>
#include <cmath>

namespace gradhpo::data {
namespace {

void require_images(const Tensor& images, const char* op) {
  require(images.defined() && images.dtype() == DType::f32 && images.ndim() == 4,
          std::string(op) + ": expected float32 images [N, C, H, W], got " +
              (images.defined() ? std::string(dtype_name(images.dtype())) + " " + images.shape().str()
                                : std::string("an undefined tensor")));
}

}  // namespace

ChannelStats channel_stats(const Tensor& images) {
  require_images(images, "channel_stats");
  const std::int64_t n = images.dim(0), c = images.dim(1), plane = images.dim(2) * images.dim(3);
  require(n > 0 && plane > 0, "channel_stats: no values in images " + images.shape().str());
  const float* x = images.data<float>();
  ChannelStats s;
  s.mean.resize(static_cast<std::size_t>(c));
  s.std.resize(static_cast<std::size_t>(c));
  for (std::int64_t ch = 0; ch < c; ++ch) {
    // Sums of (x - k) and (x - k)^2 with k the channel's first value: the shift avoids the
    // cancellation of E[x^2] - E[x]^2. Eight partial sums give the CPU independent additions.
    const double k = x[ch * plane];
    double s1[8] = {}, s2[8] = {};
    for (std::int64_t i = 0; i < n; ++i) {
      const float* p = x + (i * c + ch) * plane;
      std::int64_t j = 0;
      for (; j + 8 <= plane; j += 8)
        for (int l = 0; l < 8; ++l) {
          const double d = p[j + l] - k;
          s1[l] += d;
          s2[l] += d * d;
        }
      for (; j < plane; ++j) {
        const double d = p[j] - k;
        s1[0] += d;
        s2[0] += d * d;
      }
    }
    double t1 = 0, t2 = 0;
    for (int l = 0; l < 8; ++l) t1 += s1[l], t2 += s2[l];
    const double count = static_cast<double>(n * plane);
    const double m = t1 / count;
    const double var = std::max(0.0, t2 / count - m * m);
    s.mean[static_cast<std::size_t>(ch)] = k + m;
    s.std[static_cast<std::size_t>(ch)] = std::sqrt(var);
    require(s.std[static_cast<std::size_t>(ch)] > 1e-12,
            "channel_stats: channel " + std::to_string(ch) + " is constant (" + std::to_string(k) +
                "), its standard deviation is 0");
  }
  return s;
}

void normalize_inplace(Tensor& images, const ChannelStats& stats) {
  require_images(images, "normalize_inplace");
  const std::int64_t n = images.dim(0), c = images.dim(1), plane = images.dim(2) * images.dim(3);
  require(static_cast<std::int64_t>(stats.mean.size()) == c && static_cast<std::int64_t>(stats.std.size()) == c,
          "normalize_inplace: images have " + std::to_string(c) + " channels, stats have " +
              std::to_string(stats.mean.size()) + " means and " + std::to_string(stats.std.size()) + " deviations");
  for (std::int64_t ch = 0; ch < c; ++ch)
    require(stats.std[static_cast<std::size_t>(ch)] > 0,
            "normalize_inplace: standard deviation of channel " + std::to_string(ch) + " is not positive");
  float* x = images.data<float>();
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t ch = 0; ch < c; ++ch) {
      const auto scale = static_cast<float>(1.0 / stats.std[static_cast<std::size_t>(ch)]);
      const auto shift = static_cast<float>(-stats.mean[static_cast<std::size_t>(ch)] / stats.std[static_cast<std::size_t>(ch)]);
      float* p = x + (i * c + ch) * plane;
      for (std::int64_t j = 0; j < plane; ++j) p[j] = p[j] * scale + shift;
    }
}

Dataset normalized(const Dataset& d, const ChannelStats& stats) {
  Dataset out = d;
  out.images = d.images.clone();
  normalize_inplace(out.images, stats);
  return out;
}

}  // namespace gradhpo::data
