// The standard CIFAR augmentation: a random crop of the image zero-padded by 4 pixels, then a
// random horizontal flip (He et al. 2016, sec. 4.2; torchvision's
// RandomCrop(32, padding=4) followed by RandomHorizontalFlip()).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "../engine/tensor.h"

namespace gradhpo::data {

/// One image's draw. The crop window's top-left corner (top, left) is in the padded image, in
/// [0, 2 * pad]; (pad, pad) with flip = false is the identity.
struct CropFlip {
  int top = 0;
  int left = 0;
  bool flip = false;
};

/// out[n, c, h, w] = padded[n, c, top + h, left + w'] with w' = (flip ? W - 1 - w : w) and
/// padded[.., i, j] = x[.., i - pad, j - pad], zero outside the image. `params` has one entry
/// per image of the float32 batch [B, C, H, W]. Returns a new tensor.
Tensor crop_flip(const Tensor& images, const std::vector<CropFlip>& params, int pad);

/// Draws `n` CropFlips from `rng`, image by image (top, left, then flip), uniformly.
std::vector<CropFlip> sample_crop_flip(std::int64_t n, int pad, std::mt19937_64& rng);

/// crop_flip with parameters drawn from `rng` (advancing it); pad = 4 for CIFAR.
Tensor augment_cifar(const Tensor& images, std::mt19937_64& rng, int pad = 4);
/// The same with a fresh engine seeded by `seed`: the result depends only on (images, seed).
Tensor augment_cifar(const Tensor& images, std::uint64_t seed, int pad = 4);

}  // namespace gradhpo::data
