// Training: a small MLP on real Fashion-MNIST must learn (a broken gradient would stay near
// chance, 10%), training is deterministic for a seed, a WRN with batch norm fits a fixed batch,
// and divergence is reported with the step.
//
// test_nn links gradhpo::nn only (nn sits above data in the layering), so the IDX files are read
// here directly: gzip -dc through a pipe, then the 16- or 8-byte big-endian IDX header.
#include "../engine/check_ad.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include <gradhpo/engine/ops.h>
#include <gradhpo/nn/nn.h>

using namespace gradhpo;
using namespace gradhpo::testing;
namespace nn = gradhpo::nn;

namespace {

const char* const kFashion = "/usr/share/datasets/fashion-mnist";

// The first `bytes` bytes of the decompressed file (gzip stops when the pipe closes).
std::vector<unsigned char> gunzip_prefix(const std::string& path, std::size_t bytes) {
  std::vector<unsigned char> out(bytes);
  FILE* p = popen(("gzip -dc '" + path + "' 2>/dev/null").c_str(), "r");
  REQUIRE(p != nullptr);
  std::size_t got = 0, n;
  while (got < bytes && (n = std::fread(out.data() + got, 1, bytes - got, p)) > 0) got += n;
  pclose(p);  // gzip may end with SIGPIPE when we stop early: not an error
  REQUIRE_MESSAGE(got == bytes, path << ": read " << got << " of " << bytes << " bytes");
  return out;
}

std::uint32_t be32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

struct Images {
  Tensor x;                        // float32 [n, 1, 28, 28], standardized with mean/std of the pixels
  std::vector<std::int32_t> y;
};

// The first `limit` records of an IDX image/label pair, pixels scaled to [0, 1] then
// standardized with the Fashion-MNIST training mean and deviation (0.2860, 0.3530).
Images read_idx(const std::string& images, const std::string& labels, std::int64_t limit) {
  const auto ib = gunzip_prefix(images, 16 + static_cast<std::size_t>(limit) * 784);
  const auto lb = gunzip_prefix(labels, 8 + static_cast<std::size_t>(limit));
  REQUIRE(be32(ib.data()) == 0x803);
  REQUIRE(be32(lb.data()) == 0x801);
  REQUIRE(be32(ib.data() + 4) >= limit);
  const std::int64_t n = limit;
  Images out;
  out.x = Tensor::empty(Shape{n, 1, 28, 28}, DType::f32);
  float* px = out.x.data<float>();
  for (std::int64_t i = 0; i < n * 784; ++i)
    px[i] = static_cast<float>((ib[16 + static_cast<std::size_t>(i)] / 255.0 - 0.2860) / 0.3530);
  for (std::int64_t i = 0; i < n; ++i) out.y.push_back(lb[8 + static_cast<std::size_t>(i)]);
  return out;
}

// Copies records `idx` of d into a batch.
void gather(const Images& d, const std::vector<std::int64_t>& idx, std::size_t start, std::size_t count, Tensor& x,
            Tensor& y) {
  const std::int64_t per = d.x.shape().inner(0);
  x = Tensor::empty(Shape{static_cast<std::int64_t>(count), 1, 28, 28}, DType::f32);
  std::vector<std::int32_t> labels;
  for (std::size_t j = 0; j < count; ++j) {
    const std::int64_t r = idx[start + j];
    x.flat_slice(static_cast<std::int64_t>(j) * per, per).copy_from(d.x.flat_slice(r * per, per));
    labels.push_back(d.y[static_cast<std::size_t>(r)]);
  }
  y = Tensor::from_labels(labels);
}

// Trains for `epochs` over `train` with a seeded shuffle per epoch; returns the trainer.
std::vector<double> train_epochs(nn::Trainer& trainer, const Images& train, int epochs, std::size_t batch,
                                 std::uint64_t seed) {
  std::vector<double> epoch_loss;
  std::vector<std::int64_t> order(train.y.size());
  for (int e = 0; e < epochs; ++e) {
    std::iota(order.begin(), order.end(), 0);
    nn::Rng rng(nn::derive_seed(seed, static_cast<std::uint64_t>(e)));
    for (std::size_t i = order.size(); i > 1; --i)
      std::swap(order[i - 1], order[static_cast<std::size_t>(rng.uniform() * static_cast<double>(i))]);
    double sum = 0;
    int steps = 0;
    Tensor x, y;
    for (std::size_t s = 0; s + batch <= order.size(); s += batch) {
      gather(train, order, s, batch, x, y);
      sum += trainer.step(x, y).loss;
      ++steps;
    }
    epoch_loss.push_back(sum / steps);
  }
  return epoch_loss;
}

}  // namespace

TEST_CASE("MLP on real Fashion-MNIST: 4000 images, 2 epochs, >= 75% test accuracy, deterministic") {
  // A required package (tools/setup.sh installs it): its absence is a failure, never a silent pass.
  std::error_code ec;
  REQUIRE_MESSAGE(std::filesystem::is_directory(kFashion, ec),
                  kFashion << " is absent: apt-get install dataset-fashion-mnist (tools/setup.sh does)");
  const auto t0 = std::chrono::steady_clock::now();
  const std::string dir = kFashion;
  const Images train = read_idx(dir + "/train-images-idx3-ubyte.gz", dir + "/train-labels-idx1-ubyte.gz", 4000);
  const Images test = read_idx(dir + "/t10k-images-idx3-ubyte.gz", dir + "/t10k-labels-idx1-ubyte.gz", 2000);

  nn::MlpOptions mo;
  mo.hidden = {128};
  const nn::Mlp mlp(Shape{1, 28, 28}, 10, mo);
  nn::OptimizerConfig oc;
  oc.lr = nn::Schedule::constant(0.02);
  oc.momentum = 0.9;
  oc.weight_decay = 5e-4;

  const Tensor w0 = mlp.init(1);
  const nn::Evaluation before = nn::evaluate(mlp, w0, mlp.init_state(), test.x, test.y, 500);
  nn::Trainer trainer(mlp, w0.clone(), mlp.init_state(), oc);
  const std::vector<double> losses = train_epochs(trainer, train, 2, 50, 7);
  const nn::Evaluation after = nn::evaluate(mlp, trainer.weights(), trainer.state(), test.x, test.y, 500);
  MESSAGE("fashion-mnist mlp: test accuracy " << before.accuracy << " -> " << after.accuracy << ", epoch losses "
                                              << losses[0] << ", " << losses[1] << " ("
                                              << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
                                              << " s)");
  CHECK(after.count == 2000);
  CHECK(after.accuracy >= 0.75);
  CHECK(losses[1] < losses[0]);
  CHECK(after.loss < before.loss);
  CHECK(trainer.steps() == 2 * 80);

  // The same seed gives bit-identical weights.
  nn::Trainer again(mlp, w0.clone(), mlp.init_state(), oc);
  train_epochs(again, train, 1, 50, 7);
  nn::Trainer first(mlp, w0.clone(), mlp.init_state(), oc);
  train_epochs(first, train, 1, 50, 7);
  CHECK(again.weights().to_vector() == first.weights().to_vector());
}

TEST_CASE("tiny WRN with batch norm fits a fixed batch, and eval uses the running statistics") {
  nn::WideResNetOptions o;
  o.base_width = 4;
  const nn::WideResNet net(Shape{3, 8, 8}, 4, o);
  const Tensor x = random_tensor(Shape{8, 3, 8, 8}, 51, -1, 1, DType::f32);
  const std::vector<std::int32_t> labels = {0, 1, 2, 3, 3, 2, 1, 0};
  const Tensor y = Tensor::from_labels(labels);
  nn::OptimizerConfig oc;
  oc.kind = nn::OptimizerKind::adam;
  oc.lr = nn::Schedule::constant(0.01);
  nn::Trainer trainer(net, net.init(3), net.init_state(), oc);
  const double first = trainer.step(x, y).loss;
  double last = first;
  for (int i = 0; i < 60; ++i) last = trainer.step(x, y).loss;
  CHECK(last < 0.2 * first);
  // Running statistics moved away from their initial (0, 1).
  CHECK(trainer.state().running_mean[0].at(0) != 0.0);
  CHECK(trainer.state().running_var[0].at(0) != 1.0);
  const nn::Evaluation e = nn::evaluate(net, trainer.weights(), trainer.state(), x, labels, 3);
  CHECK(e.count == 8);
  CHECK(e.accuracy >= 0.5);
}

TEST_CASE("divergence is reported with the step and the learning rate") {
  const nn::Mlp mlp(Shape{1, 2, 2}, 3);
  nn::OptimizerConfig oc;
  oc.lr = nn::Schedule::constant(1e30);
  nn::Trainer trainer(mlp, mlp.init(1), mlp.init_state(), oc);
  const Tensor x = random_tensor(Shape{4, 1, 2, 2}, 52, -1, 1, DType::f32);
  const Tensor y = Tensor::from_labels({0, 1, 2, 0});
  bool thrown = false;
  for (int i = 0; i < 10 && !thrown; ++i) {
    try {
      trainer.step(x, y);
    } catch (const Error& e) {
      thrown = true;
      CHECK(std::string(e.what()).find("diverged at step") != std::string::npos);
      CHECK(std::string(e.what()).find("learning rate") != std::string::npos);
    }
  }
  CHECK(thrown);
}
