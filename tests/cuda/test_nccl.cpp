// NCCL's sums of device tensors (cuda/nccl.h), as data-parallel training over MPI uses them
// (hpo/mpi/nccl_sums.h). One GPU is one rank (NCCL refuses two ranks on one GPU), so the device
// checks are of a communicator of one: the sum of one rank's parts is those parts — the same bits
// in new storage — and a data-parallel hypergradient whose sums go through NCCL is the plain
// run's, bit for bit, which checks the packing by dtype, the copies back and that Unroll takes
// the replaced tensors. The sums over several GPUs are NCCL's own (its ordering: cuda/nccl.h).
#include <doctest/doctest.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <gradhpo/cuda/nccl.h>
#include <gradhpo/hpo/registry.h>

#include "hpo_problem.h"

using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string bits_of(const Tensor& t) {
  const std::vector<double> v = t.to(DType::f64).to_vector();  // float32 widens exactly
  std::string s(v.size() * sizeof(double), '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

}  // namespace

TEST_SUITE("host") {

TEST_CASE("nccl: a malformed unique id or rank is refused before any device work, or the build says it has no NCCL") {
  const std::string bad = error_of([] { cuda::NcclComm c("not an id", 0, 1); });
  if (cuda::nccl_built()) {
    CHECK(bad.find("nccl: a unique id of 9 bytes (NCCL's are 128") == 0);
    const std::string rank = error_of([] { cuda::NcclComm c(std::string(128, '\0'), 1, 1); });
    CHECK(rank.find("nccl: rank 1 of 1 is no rank of the communicator") == 0);
  } else {
    CHECK(bad.find("nccl: NcclComm: this gradhpo was built without NCCL") == 0);
  }
}

}  // TEST_SUITE

TEST_SUITE("device") {

TEST_CASE("NCCL on one GPU: the sum over one rank is each part, in new storage; host parts are handed back") {
  if (!cuda::nccl_built()) {
    MESSAGE("built without NCCL (GRADHPO_NCCL=OFF): nothing to check");
    return;
  }
  const cuda::NcclComm comm(cuda::nccl_unique_id(), 0, 1);
  const Tensor a = Tensor::from({1.5, -2.25, 3.0e-7}, Shape{3}, DType::f32).to(Device::cuda);
  const Tensor b = Tensor::from({0.1, 0.2, 0.3, 0.4}, Shape{2, 2}, DType::f64).to(Device::cuda);
  const Tensor c = Tensor::from({7.0, 1.0 / 3.0}, Shape{2}, DType::f32).to(Device::cuda);
  Tensor sa = a, sb = b, sc = c, loss = Tensor::from({0.625}, Shape{}, DType::f64);
  const std::vector<Tensor*> host = comm.sum_device_parts({&sa, &loss, &sb, &sc});
  REQUIRE(host.size() == 1);
  CHECK(host[0] == &loss);
  CHECK(loss.item() == 0.625);
  for (const auto& [sum, part] : {std::pair{&sa, &a}, std::pair{&sb, &b}, std::pair{&sc, &c}}) {
    CHECK(sum->device() == Device::cuda);
    CHECK(sum->dtype() == part->dtype());
    CHECK(sum->shape() == part->shape());
    CHECK(!sum->shares_storage_with(*part));
    CHECK(bits_of(*sum) == bits_of(*part));
  }
  CHECK(comm.allreduce_calls() == 2);  // one per dtype: the float32 parts packed together
  CHECK(comm.sum_device_parts({&loss}).size() == 1);
  CHECK(comm.allreduce_calls() == 2);  // nothing on the device, no call
}

TEST_CASE("NCCL on one GPU: a data-parallel hypergradient summed through NCCL is the plain run's, bit for bit") {
  if (!cuda::nccl_built()) {
    MESSAGE("built without NCCL (GRADHPO_NCCL=OFF): nothing to check");
    return;
  }
  hpo::register_builtin_methods();
  nn::MlpOptions o;
  o.hidden = {16};
  o.activation = nn::Activation::tanh;
  const auto model = std::make_shared<nn::Mlp>(Shape{1, 4, 4}, 3, o);
  for (const DType dtype : {DType::f64, DType::f32}) {
    ModelProblemSpec spec;
    spec.device = Device::cuda;
    spec.dtype = dtype;
    const hpo::BilevelProblem plain = model_problem(model, spec);
    hpo::BilevelProblem summed = plain;
    auto comm = std::make_shared<cuda::NcclComm>(cuda::nccl_unique_id(), 0, 1);
    summed.sum_over_shards = [comm](const std::vector<Tensor*>& parts) { (void)comm->sum_device_parts(parts); };
    const Tensor theta = plain.hyper.initial(DType::f64);
    for (const char* method : {"reverse", "forward"}) {
      INFO(method << " in " << dtype_name(dtype));
      const auto m = hpo::Registry::global().make_offline(method, {});
      const std::int64_t before = comm->allreduce_calls();
      const hpo::Hypergradient want = m->compute(plain, theta), got = m->compute(summed, theta);
      CHECK(comm->allreduce_calls() >= before + spec.horizon);  // at least one sum per inner step
      CHECK(bits_of(got.d_theta) == bits_of(want.d_theta));
      CHECK(bits_of(Tensor::from({got.val_loss}, Shape{1}, DType::f64)) ==
            bits_of(Tensor::from({want.val_loss}, Shape{1}, DType::f64)));
      CHECK(bits_of(got.final_state.w()) == bits_of(want.final_state.w()));
    }
  }
}

}  // TEST_SUITE
