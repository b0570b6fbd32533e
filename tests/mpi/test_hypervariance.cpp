// Hypervariance's perturbations over the ranks (mpi::hypervariance): every factor's P
// hypergradients, and so every row's statistics, bit for bit the single-process ones at 1, 2 and
// 4 ranks, the same on every rank; a perturbation that throws is an Error on every rank.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <gradhpo/hpo/mpi/hypervariance.h>
#include <gradhpo/hpo/registry.h>

#include "../hpo/toy.h"
#include "bits.h"

using gradhpo::mpi::Communicator;
using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

hpo::ProblemFactory toy_factory() {
  return [](hpo::Factor f, int index) {
    ToySpec spec = schedule_spec();
    spec.horizon = 12;
    spec.lr_blocks = 3;
    spec.learn_momentum = false;
    if (f == hpo::Factor::train_order) spec.batch_seed = static_cast<std::uint64_t>(index);
    if (f == hpo::Factor::init_weights) spec.init_seed = static_cast<std::uint64_t>(index);
    return toy_task(spec).problem;
  };
}

std::string rows_bits(const std::vector<hpo::HypervarianceRow>& rows) {
  std::string s;
  for (const hpo::HypervarianceRow& r : rows) {
    s += hpo::factor_name(r.factor);
    for (const auto& sample : r.samples) s += bits_of(sample);
    s += bits_of(r.spread.mean) + bits_of(r.spread.std) + bits_of(r.spread.hypervariance) +
         bits_of(r.spread.sign_fluctuation) +
         bits_of(std::vector<double>{r.spread.mean_hypervariance, r.spread.mean_sign_fluctuation}) + "|";
  }
  return s;
}

}  // namespace

TEST_CASE("mpi::hypervariance: every perturbation a task, the single-process rows bit for bit on every rank") {
  const Communicator comm = Communicator::world();
  hpo::register_builtin_methods();
  const auto method = hpo::Registry::global().make_offline("forward");
  const hpo::ProblemFactory factory = toy_factory();
  const Tensor theta = factory(hpo::Factor::train_order, 0).hyper.initial();
  const std::vector<hpo::Factor> factors = {hpo::Factor::train_order, hpo::Factor::val_sample,
                                            hpo::Factor::init_weights, hpo::Factor::hyperparameters};
  const auto one = hpo::hypervariance(factory, theta, *method, 3, factors, 7);
  const auto many = mpi::hypervariance(comm, factory, theta, *method, 3, factors, 7);
  REQUIRE(many.size() == 4);
  CHECK(many[0].samples.size() == 3);
  CHECK(many[3].samples[0] != many[3].samples[1]);  // the hyperparameter draws differ per perturbation
  CHECK(rows_bits(many) == rows_bits(one));
  for (const std::string& r : comm.gather(rows_bits(many))) CHECK(r == rows_bits(many));
}

TEST_CASE("mpi::hypervariance: a perturbation that throws is an Error on every rank, naming it") {
  const Communicator comm = Communicator::world();
  hpo::register_builtin_methods();
  const auto method = hpo::Registry::global().make_offline("forward");
  const hpo::ProblemFactory base = toy_factory();
  const hpo::ProblemFactory broken = [&](hpo::Factor f, int index) {
    if (f == hpo::Factor::init_weights && index == 2) throw Error("no weights for this seed");
    return base(f, index);
  };
  const Tensor theta = base(hpo::Factor::train_order, 0).hyper.initial();
  const std::string e = error_of([&] { mpi::hypervariance(comm, broken, theta, *method, 3, {hpo::Factor::init_weights}); });
  CHECK(contains(e, "perturbation 2 of initial weights"));
  CHECK(contains(e, "no weights for this seed"));
}
