// The README's GPU example compiles, runs on the device, and agrees with the CPU.
#include <doctest/doctest.h>

#include <gradhpo/cuda/cuda.h>
#include <gradhpo/nn/nn.h>

#include "device_test.h"

using namespace gradhpo;

TEST_SUITE("device") {

TEST_CASE("README example: LeNet-5 gradient and H v on the GPU") {
  auto run = [](bool gpu) {
    nn::LeNet5 model(Shape{1, 28, 28}, 10);
    Tensor x = Tensor::zeros({8, 1, 28, 28}), y = Tensor::from_labels({0, 1, 2, 3, 4, 5, 6, 7});
    Tensor w = model.init(0), v = Tensor::full({model.num_params()}, 0.01);
    if (gpu && cuda::available())
      for (Tensor* t : {&x, &y, &w, &v}) *t = t->to(Device::cuda);
    auto loss = [&](const Var& W) { return cross_entropy(model.forward(W, x, nn::Context::train()), y); };
    HvpResult r = hvp(loss, w, v);
    CHECK(r.hvp.device() == (gpu ? Device::cuda : Device::cpu));
    return r.hvp.to_vector();
  };
  CHECK(testing::relative_difference(run(true), run(false)) <= 1e-4);
}

}  // TEST_SUITE
