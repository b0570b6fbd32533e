#include "augment.h"

#include <algorithm>
#include <cstring>

#include "random.h"

namespace gradhpo::data {

Tensor crop_flip(const Tensor& images, const std::vector<CropFlip>& params, int pad) {
  require(images.defined() && images.dtype() == DType::f32 && images.ndim() == 4,
          "crop_flip: expected float32 images [B, C, H, W], got " +
              (images.defined() ? std::string(dtype_name(images.dtype())) + " " + images.shape().str()
                                : std::string("an undefined tensor")));
  const std::int64_t b = images.dim(0), c = images.dim(1), h = images.dim(2), w = images.dim(3);
  require(static_cast<std::int64_t>(params.size()) == b,
          "crop_flip: " + std::to_string(params.size()) + " parameter sets for " + std::to_string(b) + " images");
  require(pad >= 0, "crop_flip: pad must be >= 0, got " + std::to_string(pad));
  for (std::size_t i = 0; i < params.size(); ++i) {
    const CropFlip& p = params[i];
    require(p.top >= 0 && p.top <= 2 * pad && p.left >= 0 && p.left <= 2 * pad,
            "crop_flip: image " + std::to_string(i) + " has crop corner (" + std::to_string(p.top) + ", " +
                std::to_string(p.left) + "), expected both in [0, " + std::to_string(2 * pad) + "]");
  }
  Tensor out = Tensor::empty(images.shape(), DType::f32);
  const float* src = images.data<float>();
  float* dst = out.data<float>();
  const std::int64_t plane = h * w;
  for (std::int64_t n = 0; n < b; ++n) {
    const CropFlip& p = params[static_cast<std::size_t>(n)];
    const std::int64_t dy = p.top - pad, dx = p.left - pad;  // out(r, q) reads x(r + dy, q' + dx)
    // Output columns q' whose source column q' + dx is inside the image.
    const std::int64_t q0 = std::clamp<std::int64_t>(-dx, 0, w), q1 = std::clamp<std::int64_t>(w - dx, 0, w);
    for (std::int64_t ch = 0; ch < c; ++ch) {
      const float* s = src + (n * c + ch) * plane;
      float* o = dst + (n * c + ch) * plane;
      for (std::int64_t r = 0; r < h; ++r) {
        float* orow = o + r * w;
        const std::int64_t sr = r + dy;
        if (sr < 0 || sr >= h) {
          std::fill_n(orow, w, 0.0f);
          continue;
        }
        const float* srow = s + sr * w;
        if (!p.flip) {
          std::fill(orow, orow + q0, 0.0f);
          if (q1 > q0) std::memcpy(orow + q0, srow + q0 + dx, static_cast<std::size_t>(q1 - q0) * sizeof(float));
          std::fill(orow + std::max(q1, q0), orow + w, 0.0f);
        } else {
          for (std::int64_t q = 0; q < w; ++q) {
            const std::int64_t sq = (w - 1 - q) + dx;
            orow[q] = (sq >= 0 && sq < w) ? srow[sq] : 0.0f;
          }
        }
      }
    }
  }
  return out;
}

std::vector<CropFlip> sample_crop_flip(std::int64_t n, int pad, std::mt19937_64& rng) {
  require(n >= 0 && pad >= 0, "sample_crop_flip: need n >= 0 and pad >= 0, got n = " + std::to_string(n) +
                                  ", pad = " + std::to_string(pad));
  std::vector<CropFlip> params(static_cast<std::size_t>(n));
  const auto range = static_cast<std::uint64_t>(2 * pad + 1);
  for (CropFlip& p : params) {
    p.top = static_cast<int>(uniform_below(rng, range));
    p.left = static_cast<int>(uniform_below(rng, range));
    p.flip = coin(rng);
  }
  return params;
}

Tensor augment_cifar(const Tensor& images, std::mt19937_64& rng, int pad) {
  require(images.defined() && images.ndim() == 4,
          "augment_cifar: expected images [B, C, H, W], got " +
              (images.defined() ? images.shape().str() : std::string("an undefined tensor")));
  return crop_flip(images, sample_crop_flip(images.dim(0), pad, rng), pad);
}

Tensor augment_cifar(const Tensor& images, std::uint64_t seed, int pad) {
  std::mt19937_64 rng(seed);
  return augment_cifar(images, rng, pad);
}

}  // namespace gradhpo::data
