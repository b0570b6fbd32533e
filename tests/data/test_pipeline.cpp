// Validation split, normalization, mini-batches and augmentation, on small in-memory datasets.
#include <doctest/doctest.h>

#include <gradhpo/data/augment.h>
#include <gradhpo/data/batches.h>
#include <gradhpo/data/normalize.h>
#include <gradhpo/data/random.h>
#include <gradhpo/data/split.h>
#include <gradhpo/engine/error.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>

using gradhpo::DType;
using gradhpo::Shape;
using gradhpo::Tensor;
namespace data = gradhpo::data;

namespace {

// A dataset whose record i has every pixel of channel c equal to i + 1000 * c, label i % k:
// any copy or reorder can be traced back to the source record.
data::Dataset traceable(std::int64_t n, std::int64_t c = 2, std::int64_t h = 3, std::int64_t w = 4, int k = 10) {
  data::Dataset d;
  d.name = "traceable";
  d.num_classes = k;
  d.images = Tensor::empty(Shape{n, c, h, w});
  float* x = d.images.data<float>();
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t ch = 0; ch < c; ++ch)
      for (std::int64_t j = 0; j < h * w; ++j) x[(i * c + ch) * h * w + j] = static_cast<float>(i + 1000 * ch);
  for (std::int64_t i = 0; i < n; ++i) d.labels.push_back(static_cast<std::int32_t>(i % k));
  return d;
}

// Random images with channel c drawn from N(mean[c], sd[c]).
data::Dataset gaussian(std::int64_t n, const std::vector<double>& mean, const std::vector<double>& sd,
                       std::uint64_t seed) {
  const auto c = static_cast<std::int64_t>(mean.size());
  data::Dataset d;
  d.name = "gaussian";
  d.num_classes = 2;
  d.images = Tensor::empty(Shape{n, c, 5, 6});
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> z;
  float* x = d.images.data<float>();
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t ch = 0; ch < c; ++ch)
      for (int j = 0; j < 30; ++j)
        x[(i * c + ch) * 30 + j] = static_cast<float>(mean[static_cast<std::size_t>(ch)] + sd[static_cast<std::size_t>(ch)] * z(rng));
  d.labels.assign(static_cast<std::size_t>(n), 0);
  return d;
}

// Mean and population standard deviation of channel ch, two passes in double.
std::pair<double, double> moments(const Tensor& images, std::int64_t ch) {
  const std::int64_t n = images.dim(0), c = images.dim(1), plane = images.dim(2) * images.dim(3);
  const float* x = images.data<float>();
  double s = 0;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < plane; ++j) s += x[(i * c + ch) * plane + j];
  const double m = s / static_cast<double>(n * plane);
  double v = 0;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < plane; ++j) v += std::pow(x[(i * c + ch) * plane + j] - m, 2);
  return {m, std::sqrt(v / static_cast<double>(n * plane))};
}

}  // namespace

TEST_CASE("split_indices: sizes, disjoint, covering, reproducible") {
  const auto s = data::split_indices(1000, 0.05, 7);
  CHECK(s.val.size() == 50);
  CHECK(s.train.size() == 950);
  CHECK(std::is_sorted(s.train.begin(), s.train.end()));
  CHECK(std::is_sorted(s.val.begin(), s.val.end()));
  std::vector<std::int64_t> all = s.train;
  all.insert(all.end(), s.val.begin(), s.val.end());
  std::sort(all.begin(), all.end());
  std::vector<std::int64_t> expect(1000);
  std::iota(expect.begin(), expect.end(), 0);
  CHECK(all == expect);  // disjoint and covering at once

  const auto again = data::split_indices(1000, 0.05, 7);
  CHECK(again.val == s.val);
  CHECK(again.train == s.train);
  CHECK(data::split_indices(1000, 0.05, 8).val != s.val);

  // The validation part is spread over the whole range, not a block at one end.
  CHECK(s.val.front() < 200);
  CHECK(s.val.back() > 800);

  CHECK(data::split_indices(10, 0.0, 1).val.empty());
  CHECK(data::split_indices(10, 0.26, 1).val.size() == 3);  // rounded
  CHECK_THROWS_AS(data::split_indices(10, 1.0, 1), gradhpo::Error);
  CHECK_THROWS_AS(data::split_indices(10, -0.1, 1), gradhpo::Error);
  CHECK_THROWS_AS(data::split_indices(2, 0.9, 1), gradhpo::Error);  // nothing left to train on
  CHECK_THROWS_AS(data::split_indices(0, 0.1, 1), gradhpo::Error);
}

TEST_CASE("split_train_val carries images and labels of the chosen records") {
  const data::Dataset d = traceable(200, 2, 3, 4, 7);
  const auto tv = data::split_train_val(d, 0.1, 3);
  const auto idx = data::split_indices(200, 0.1, 3);
  REQUIRE(tv.val.size() == 20);
  REQUIRE(tv.train.size() == 180);
  CHECK(tv.val.images.shape() == Shape{20, 2, 3, 4});
  CHECK(tv.val.num_classes == 7);
  CHECK(tv.val.name == "traceable:val");
  CHECK_FALSE(tv.val.images.shares_storage_with(d.images));
  for (std::size_t i = 0; i < idx.val.size(); ++i) {
    const std::int64_t src = idx.val[i];
    CHECK(tv.val.labels[i] == src % 7);
    CHECK(tv.val.images.at(static_cast<std::int64_t>(i) * 24) == doctest::Approx(src));
    CHECK(tv.val.images.at(static_cast<std::int64_t>(i) * 24 + 12) == doctest::Approx(src + 1000));
  }
  for (std::size_t i = 0; i < idx.train.size(); ++i)
    CHECK(tv.train.images.at(static_cast<std::int64_t>(i) * 24 + 23) == doctest::Approx(idx.train[i] + 1000));
  tv.train.check();
  tv.val.check();
}

TEST_CASE("Dataset::subset and label_counts") {
  const data::Dataset d = traceable(12, 1, 2, 2, 3);
  const data::Dataset s = d.subset({5, 5, 0});
  CHECK(s.size() == 3);
  CHECK(s.images.at(0) == 5);
  CHECK(s.images.at(4) == 5);
  CHECK(s.images.at(8) == 0);
  CHECK(s.labels == std::vector<std::int32_t>{2, 2, 0});
  CHECK(data::label_counts(d) == std::vector<std::int64_t>{4, 4, 4});
  CHECK_THROWS_AS(d.subset({12}), gradhpo::Error);
  CHECK_THROWS_AS(d.subset({-1}), gradhpo::Error);
  data::Dataset bad = d;
  bad.labels[3] = 3;
  CHECK_THROWS_AS(bad.check(), gradhpo::Error);
  bad.labels.pop_back();
  CHECK_THROWS_AS(bad.check(), gradhpo::Error);
}

TEST_CASE("channel statistics from the training part standardize it") {
  const std::vector<double> mean = {0.2, 0.5, -3.0}, sd = {0.05, 2.0, 0.7};
  const data::Dataset train = gaussian(400, mean, sd, 1);
  const data::ChannelStats st = data::channel_stats(train);
  REQUIRE(st.mean.size() == 3);
  for (std::int64_t c = 0; c < 3; ++c) {
    const auto [m, s] = moments(train.images, c);
    CHECK(std::abs(st.mean[static_cast<std::size_t>(c)] - m) < 1e-9 * (1 + std::abs(m)));
    CHECK(std::abs(st.std[static_cast<std::size_t>(c)] - s) < 1e-9 * s);
    CHECK(std::abs(m - mean[static_cast<std::size_t>(c)]) < 0.05 * sd[static_cast<std::size_t>(c)]);
  }

  const data::Dataset n = data::normalized(train, st);
  for (std::int64_t c = 0; c < 3; ++c) {
    const auto [m, s] = moments(n.images, c);
    CHECK(std::abs(m) < 1e-5);
    CHECK(std::abs(s - 1) < 1e-5);
  }
  // The source is untouched; the same statistics apply to another dataset.
  CHECK(train.images.at(0) != n.images.at(0));
  const data::Dataset test = gaussian(10, mean, sd, 2);
  const data::Dataset nt = data::normalized(test, st);
  const std::int64_t k = 2 * 30 + 7;  // channel 2 of image 0
  CHECK(nt.images.at(k) == doctest::Approx((test.images.at(k) - st.mean[2]) / st.std[2]).epsilon(1e-5));

  Tensor wrong = Tensor::zeros(Shape{1, 2, 5, 6});
  CHECK_THROWS_AS(data::normalize_inplace(wrong, st), gradhpo::Error);
  CHECK_THROWS_AS(data::channel_stats(Tensor::full(Shape{2, 1, 2, 2}, 0.5)), gradhpo::Error);  // constant
  CHECK_THROWS_AS(data::channel_stats(Tensor::zeros(Shape{2, 2})), gradhpo::Error);
}

TEST_CASE("channel_stats keeps precision for a large offset") {
  // mean 1000, sd 0.01: E[x^2] - E[x]^2 in float would lose every digit of the variance.
  const data::Dataset d = gaussian(50, {1000.0}, {0.01}, 3);
  const auto [m, s] = moments(d.images, 0);
  const auto st = data::channel_stats(d);
  CHECK(std::abs(st.std[0] - s) < 1e-6 * s);
  CHECK(std::abs(st.mean[0] - m) < 1e-9 * m);
}

TEST_CASE("BatchIterator: sizes, coverage, drop_last") {
  const data::Dataset d = traceable(103);
  data::BatchIterator it(d, 10, 42);
  CHECK(it.batches_per_epoch() == 11);
  data::Batch b;
  std::vector<std::int64_t> seen;
  int count = 0;
  while (it.next(b)) {
    ++count;
    CHECK(b.x.shape() == Shape{b.size(), 2, 3, 4});
    CHECK(b.size() == (count == 11 ? 3 : 10));
    for (std::int64_t i = 0; i < b.size(); ++i) {
      const std::int64_t r = b.indices[static_cast<std::size_t>(i)];
      CHECK(b.y[static_cast<std::size_t>(i)] == r % 10);
      CHECK(b.x.at(i * 24) == r);
      CHECK(b.x.at(i * 24 + 12) == r + 1000);
      seen.push_back(r);
    }
  }
  CHECK(count == 11);
  CHECK_FALSE(it.next(b));  // stays at the end until the next epoch starts
  std::sort(seen.begin(), seen.end());
  std::vector<std::int64_t> all(103);
  std::iota(all.begin(), all.end(), 0);
  CHECK(seen == all);

  data::BatchIterator dl(d, 10, 42, true, true);
  CHECK(dl.batches_per_epoch() == 10);
  count = 0;
  while (dl.next(b)) {
    ++count;
    CHECK(b.size() == 10);
  }
  CHECK(count == 10);
  CHECK(b.y_tensor().dtype() == DType::i32);
  CHECK(b.y_tensor().numel() == 10);

  data::BatchIterator seq(d, 50, 42, false);
  REQUIRE(seq.next(b));
  for (std::int64_t i = 0; i < 50; ++i) CHECK(b.indices[static_cast<std::size_t>(i)] == i);

  CHECK_THROWS_AS(data::BatchIterator(d, 0, 1), gradhpo::Error);
}

TEST_CASE("BatchIterator: epoch order depends only on (seed, epoch)") {
  const data::Dataset d = traceable(64);
  data::BatchIterator a(d, 8, 5), b(d, 8, 5), c(d, 8, 6);
  CHECK(a.order() == b.order());
  CHECK(a.order() != c.order());
  std::vector<std::int64_t> identity(64);
  std::iota(identity.begin(), identity.end(), 0);
  CHECK(a.order() != identity);

  const auto epoch0 = a.order();
  a.start_epoch(1);
  const auto epoch1 = a.order();
  CHECK(epoch1 != epoch0);
  a.start_epoch(7);
  a.start_epoch(1);  // going back reproduces epoch 1 whatever came in between
  CHECK(a.order() == epoch1);
  b.start_epoch(1);
  CHECK(b.order() == epoch1);

  // The batches themselves, not only the order, are reproducible.
  data::Batch x, y;
  a.start_epoch(3);
  b.start_epoch(3);
  while (a.next(x)) {
    REQUIRE(b.next(y));
    CHECK(x.indices == y.indices);
    CHECK(x.x.to_vector() == y.x.to_vector());
  }
}

TEST_CASE("BatchIterator reuses the batch tensor when nothing else holds it") {
  const data::Dataset d = traceable(40);
  data::BatchIterator it(d, 10, 1);
  data::Batch b;
  REQUIRE(it.next(b));
  const void* first = b.x.raw();
  REQUIRE(it.next(b));
  CHECK(b.x.raw() == first);
  const Tensor kept = b.x;  // now shared: the next batch must not overwrite it
  const auto before = kept.to_vector();
  REQUIRE(it.next(b));
  CHECK_FALSE(b.x.shares_storage_with(kept));
  CHECK(kept.to_vector() == before);
}

namespace {

// Reference crop+flip straight from the definition: pad with zeros, crop, then mirror.
float reference(const Tensor& x, std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w,
                const data::CropFlip& p, int pad) {
  const std::int64_t H = x.dim(2), W = x.dim(3);
  const std::int64_t wc = p.flip ? W - 1 - w : w;  // flip after the crop
  const std::int64_t i = p.top + h - pad, j = p.left + wc - pad;
  if (i < 0 || i >= H || j < 0 || j >= W) return 0.0f;
  return x.data<float>()[((n * x.dim(1) + c) * H + i) * W + j];
}

Tensor counting(const Shape& s) {
  Tensor t = Tensor::empty(s);
  for (std::int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(i + 1);
  return t;
}

}  // namespace

TEST_CASE("crop_flip on a tiny image: flip reverses columns, crop shifts with zero fill") {
  // One 3 x 4 image, two channels, values 1..24; pad 2.
  const Tensor x = counting(Shape{1, 2, 3, 4});
  const int pad = 2;

  const Tensor same = data::crop_flip(x, {{pad, pad, false}}, pad);
  CHECK(same.to_vector() == x.to_vector());

  const Tensor flipped = data::crop_flip(x, {{pad, pad, true}}, pad);
  // Row 0 of channel 0 is 1 2 3 4; mirrored it is 4 3 2 1.
  CHECK(flipped.to_vector() == std::vector<double>{4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9,
                                                   16, 15, 14, 13, 20, 19, 18, 17, 24, 23, 22, 21});

  // Window one row down and two columns right: out(h, w) = x(h + 1, w + 2), zero past the edge.
  const Tensor shifted = data::crop_flip(x, {{pad + 1, pad + 2, false}}, pad);
  CHECK(shifted.to_vector() == std::vector<double>{7, 8, 0, 0, 11, 12, 0, 0, 0, 0, 0, 0,
                                                   19, 20, 0, 0, 23, 24, 0, 0, 0, 0, 0, 0});

  // Window at the padded corner: out(h, w) = x(h - 2, w - 2).
  const Tensor corner = data::crop_flip(x, {{0, 0, false}}, pad);
  CHECK(corner.to_vector() == std::vector<double>{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2,
                                                  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 13, 14});

  // Crop then flip: the shifted rows 7 8 0 0 mirrored.
  const Tensor both = data::crop_flip(x, {{pad + 1, pad + 2, true}}, pad);
  CHECK(both.to_vector() == std::vector<double>{0, 0, 8, 7, 0, 0, 12, 11, 0, 0, 0, 0,
                                                0, 0, 20, 19, 0, 0, 24, 23, 0, 0, 0, 0});

  CHECK_THROWS_AS(data::crop_flip(x, {{2 * pad + 1, 0, false}}, pad), gradhpo::Error);
  CHECK_THROWS_AS(data::crop_flip(x, {}, pad), gradhpo::Error);
}

TEST_CASE("crop_flip matches the definition for every parameter on a CIFAR-sized batch") {
  const Tensor x = counting(Shape{2, 3, 32, 32});
  const int pad = 4;
  for (int top = 0; top <= 2 * pad; ++top)
    for (int left = 0; left <= 2 * pad; left += 3)
      for (bool flip : {false, true}) {
        const std::vector<data::CropFlip> params = {{top, left, flip}, {2 * pad - top, left, !flip}};
        const Tensor out = data::crop_flip(x, params, pad);
        const float* o = out.data<float>();
        bool ok = true;
        for (std::int64_t n = 0; n < 2; ++n)
          for (std::int64_t c = 0; c < 3; ++c)
            for (std::int64_t h = 0; h < 32; ++h)
              for (std::int64_t w = 0; w < 32; ++w)
                ok = ok && o[((n * 3 + c) * 32 + h) * 32 + w] ==
                               reference(x, n, c, h, w, params[static_cast<std::size_t>(n)], pad);
        CHECK_MESSAGE(ok, "top ", top, " left ", left, " flip ", flip);
      }
}

TEST_CASE("augment_cifar is seeded and draws every crop and flip") {
  const Tensor x = counting(Shape{8, 3, 32, 32});
  CHECK(data::augment_cifar(x, std::uint64_t{11}).to_vector() == data::augment_cifar(x, std::uint64_t{11}).to_vector());
  CHECK(data::augment_cifar(x, std::uint64_t{11}).to_vector() != data::augment_cifar(x, std::uint64_t{12}).to_vector());

  // An engine passed in advances: two calls give two different augmentations of the batch.
  std::mt19937_64 rng(3);
  const auto first = data::augment_cifar(x, rng).to_vector();
  CHECK(data::augment_cifar(x, rng).to_vector() != first);

  std::mt19937_64 r2(4);
  const auto params = data::sample_crop_flip(20000, 4, r2);
  std::set<std::tuple<int, int, bool>> kinds;
  int flips = 0;
  bool in_range = true;
  for (const auto& p : params) {
    in_range = in_range && p.top >= 0 && p.top <= 8 && p.left >= 0 && p.left <= 8;
    kinds.insert({p.top, p.left, p.flip});
    flips += p.flip;
  }
  CHECK(in_range);
  CHECK(kinds.size() == 9 * 9 * 2);
  CHECK(std::abs(flips - 10000) < 400);  // about 5 standard deviations
}

TEST_CASE("uniform_below is in range and unbiased enough") {
  std::mt19937_64 rng(9);
  std::vector<int> hist(7, 0);
  for (int i = 0; i < 70000; ++i) ++hist[data::uniform_below(rng, 7)];
  for (int h : hist) CHECK(std::abs(h - 10000) < 500);
  CHECK(data::uniform_below(rng, 1) == 0);
  const std::uint64_t big = (std::uint64_t{1} << 63) + 1;  // rejection region nearly half
  for (int i = 0; i < 100; ++i) CHECK(data::uniform_below(rng, big) < big);
}
