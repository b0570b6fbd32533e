// conv2d and channel_bias / channel_scale / channel_affine / channel_sum: every derivative
// through check_ad (float64, finite differences, K directions, dense Hessian, float32), values
// against a naive loop written here, batched against one image at a time, the threaded image
// loop against the serial one, and the errors.
#include "check_ad.h"

#include <gradhpo/engine/ops.h>

#include <sstream>

#ifdef _OPENMP
#include <omp.h>
#endif

using namespace gradhpo;
using namespace gradhpo::testing;

namespace {

struct ConvCase {
  std::int64_t N, C, H, W, O, kh, kw;
  int stride, pad;
  bool bias;
  std::string name() const {  // a stream: GCC 12 warns (-Wrestrict, falsely) on chains of string +
    std::ostringstream s;
    s << "N" << N << " C" << C << " " << H << "x" << W << " O" << O << " k" << kh << "x" << kw << " s" << stride
      << " p" << pad << (bias ? " +bias" : "");
    return s.str();
  }
};

// w = [filters | image | bias], λ has W entries (W ≥ kw, O): the images are data plus a
// w-dependent image scaled by λ, the filters are scaled by λ, so ∂²/∂λ∂w is non-trivial.
Var conv_loss(const ConvCase& k, const Var& w, const Var& lam) {
  const std::int64_t nf = k.O * k.C * k.kh * k.kw, ni = k.C * k.H * k.W;
  const Var filt = slice(w, 0, Shape{k.O, k.C, k.kh, k.kw}) * slice(lam, 0, Shape{k.kw});
  const Var img = slice(w, nf, Shape{k.C, k.H, k.W}) * lam;
  const Var x = random_tensor(Shape{k.N, k.C, k.H, k.W}, 5).to(w.dtype()) + img;
  Var y = conv2d(x, filt, k.stride, k.pad);
  if (k.bias) y = channel_bias(y, slice(w, nf + ni, Shape{k.O}) * slice(lam, 0, Shape{k.O}));
  return wrap(y);
}

Tensor conv_w(const ConvCase& k) {
  return random_tensor(Shape{k.O * k.C * k.kh * k.kw + k.C * k.H * k.W + (k.bias ? k.O : 0)}, 3);
}

// The definition, with no im2col: y[n,o,i,j] = Σ_{c,a,b} x[n,c,i·s−p+a, j·s−p+b] W[o,c,a,b].
std::vector<double> naive_conv(const std::vector<double>& x, const std::vector<double>& w, std::int64_t N,
                               std::int64_t C, std::int64_t H, std::int64_t W, std::int64_t O, std::int64_t kh,
                               std::int64_t kw, std::int64_t s, std::int64_t p) {
  const std::int64_t Ho = (H + 2 * p - kh) / s + 1, Wo = (W + 2 * p - kw) / s + 1;
  std::vector<double> y(static_cast<std::size_t>(N * O * Ho * Wo), 0.0);
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t o = 0; o < O; ++o)
      for (std::int64_t i = 0; i < Ho; ++i)
        for (std::int64_t j = 0; j < Wo; ++j) {
          double acc = 0;
          for (std::int64_t c = 0; c < C; ++c)
            for (std::int64_t a = 0; a < kh; ++a)
              for (std::int64_t b = 0; b < kw; ++b) {
                const std::int64_t r = i * s - p + a, q = j * s - p + b;
                if (r < 0 || r >= H || q < 0 || q >= W) continue;
                acc += x[static_cast<std::size_t>(((n * C + c) * H + r) * W + q)] *
                       w[static_cast<std::size_t>(((o * C + c) * kh + a) * kw + b)];
              }
          y[static_cast<std::size_t>(((n * O + o) * Ho + i) * Wo + j)] = acc;
        }
  return y;
}

template <class F> void check_error(F&& f, const std::vector<std::string>& parts) {
  bool thrown = false;
  try {
    f();
  } catch (const Error& e) {
    thrown = true;
    const std::string what = e.what();
    for (const std::string& p : parts) CHECK_MESSAGE(what.find(p) != std::string::npos, "'" << what << "' lacks '" << p << "'");
  }
  CHECK_MESSAGE(thrown, "expected a gradhpo::Error mentioning " << parts.front());
}

}  // namespace

TEST_CASE("conv2d: derivatives of every order for stride, padding, kernel and bias combinations") {
  const ConvCase cases[] = {
      {2, 2, 5, 5, 2, 3, 3, 1, 0, false},  // plain 3×3
      {2, 2, 5, 5, 2, 3, 3, 1, 1, true},   // same padding, with bias
      {2, 2, 6, 6, 3, 3, 3, 2, 1, true},   // stride 2, padding 1 (WRN downsampling)
      {2, 1, 6, 5, 2, 2, 3, 2, 0, false},  // rectangular kernel, stride 2
      {2, 3, 4, 4, 2, 1, 1, 1, 0, true},   // pointwise (im2col is the image itself)
      {2, 3, 5, 5, 2, 1, 1, 2, 0, false},  // 1×1 stride 2 (WRN shortcut)
      {2, 2, 3, 3, 2, 3, 3, 1, 2, false},  // padding larger than needed: border outputs see only zeros
  };
  for (const ConvCase& k : cases) {
    INFO(k.name());
    AdCheckOptions opt;
    check_ad("conv2d " + k.name(), [k](const Var& w, const Var& lam) { return conv_loss(k, w, lam); }, conv_w(k),
             random_tensor(Shape{k.W}, 4, 0.5, 1.5), opt);
  }
}

TEST_CASE("conv2d: data input (no adjoint for x) and a filter shared by two convolutions") {
  const Tensor X = random_tensor(Shape{2, 2, 5, 4}, 8);
  check_ad("conv2d of data", [X](const Var& w, const Var& lam) {
    const Var filt = slice(w, 0, Shape{3, 2, 2, 2}) * slice(lam, 0, Shape{2});
    const Var y = conv2d(w.tape().constant(X.to(w.dtype())), filt, 1, 1);   // [2, 3, 6, 5]
    const Var z = conv2d(tanh(y), slice(w, 24, Shape{2, 3, 3, 3}), 2, 0);  // conv of conv
    return wrap(y) + wrap(z, 17);
  }, random_tensor(Shape{24 + 54}, 12, -0.5, 0.5), random_tensor(Shape{2}, 13, 0.5, 1.5));
}

TEST_CASE("channel_bias, channel_scale, channel_affine, channel_sum on [N, C, H, W] and [N, C]") {
  for (int dims : {2, 4}) {
    check_ad("channel ops, ndim " + std::to_string(dims), [dims](const Var& w, const Var& lam) {
      const Shape xs = dims == 4 ? Shape{2, 3, 2, 2} : Shape{8, 3};
      const Var x = reshape(slice(w, 0, Shape{24}), xs) * slice(lam, 0, Shape{xs[dims - 1]});
      const Var s = slice(w, 24, Shape{3}) * slice(lam, 0, Shape{3});
      const Var b = slice(w, 27, Shape{3}) * slice(lam, 1, Shape{3});
      return wrap(channel_affine(x, s, b)) + wrap(channel_scale(x, b), 21) + wrap(channel_bias(x, s), 31) +
             wrap(channel_sum(x * x), 41);
    }, random_tensor(Shape{30}, 14), random_tensor(Shape{4}, 15, 0.5, 1.5));
  }
}

TEST_CASE("conv2d values equal a naive loop, in float64 and float32, serial and threaded") {
  struct V { std::int64_t N, C, H, W, O, kh, kw, s, p; };
  for (const V& v : {V{3, 2, 7, 6, 4, 3, 2, 1, 0}, V{2, 3, 8, 8, 5, 3, 3, 2, 1}, V{2, 4, 5, 5, 3, 1, 1, 1, 0},
                     V{2, 2, 5, 7, 2, 4, 4, 3, 2}, V{16, 3, 16, 16, 8, 3, 3, 1, 1} /* threaded path */}) {
    for (DType dt : {DType::f64, DType::f32}) {
      const Tensor x = random_tensor(Shape{v.N, v.C, v.H, v.W}, 21, -1, 1, dt);
      const Tensor w = random_tensor(Shape{v.O, v.C, v.kh, v.kw}, 22, -1, 1, dt);
      Tape t;
      const Var y = conv2d(t.constant(x), t.constant(w), static_cast<int>(v.s), static_cast<int>(v.p));
      const auto ref = naive_conv(x.to_vector(), w.to_vector(), v.N, v.C, v.H, v.W, v.O, v.kh, v.kw, v.s, v.p);
      const std::int64_t Ho = (v.H + 2 * v.p - v.kh) / v.s + 1, Wo = (v.W + 2 * v.p - v.kw) / v.s + 1;
      CHECK(y.shape() == Shape{v.N, v.O, Ho, Wo});
      CHECK(rel_error(y.value().to_vector(), ref) <= (dt == DType::f64 ? 1e-13 : 1e-6));
    }
  }
}

TEST_CASE("conv2d of a batch equals conv2d of each image alone") {
  const Tensor x = random_tensor(Shape{4, 3, 9, 9}, 31);
  const Tensor w = random_tensor(Shape{5, 3, 3, 3}, 32);
  Tape t;
  const Var y = conv2d(t.constant(x), t.constant(w), 2, 1);
  for (std::int64_t n = 0; n < 4; ++n) {
    const Var yn = conv2d(t.constant(x.rows(n, 1)), t.constant(w), 2, 1);
    CHECK(rel_error(yn.value().to_vector(), y.value().rows(n, 1).to_vector()) <= 1e-15);
  }
}

TEST_CASE("conv2d adjoints and tangents obey their identities on images with several row blocks") {
  // Images large enough (in float64) that every kernel splits them into blocks of output rows.
  // Adjoint identities ⟨u, F(v, W)⟩ = ⟨Bx(u, W), v⟩ and ⟨u, F(x, V)⟩ = ⟨Bw(u, x), V⟩, and each
  // Dual tangent (stacked banks) against the sum of its two bilinear terms from plain calls.
  struct G { Shape xs, ws; int s, p; };
  for (const G& c : {G{Shape{2, 8, 34, 34}, Shape{4, 8, 3, 3}, 1, 1}, G{Shape{2, 8, 67, 67}, Shape{3, 8, 3, 3}, 2, 1},
                     G{Shape{2, 6, 40, 36}, Shape{4, 6, 5, 3}, 1, 0}}) {
    INFO("x " << c.xs.str() << " w " << c.ws.str());
    const Tensor x = random_tensor(c.xs, 61), W = random_tensor(c.ws, 62);
    const Tensor y = dual::conv2d(Dual(x), Dual(W), c.s, c.p).value;
    const Tensor u = random_tensor(y.shape(), 63), v = random_tensor(c.xs, 64), V = random_tensor(c.ws, 65);
    auto dot = [](const Tensor& a, const Tensor& b) {
      double d = 0;
      for (std::int64_t i = 0; i < a.numel(); ++i) d += a.at(i) * b.at(i);
      return d;
    };
    auto F = [&](const Tensor& a, const Tensor& b) { return dual::conv2d(Dual(a), Dual(b), c.s, c.p).value; };
    auto Bx = [&](const Tensor& g, const Tensor& b) {
      return dual::conv2d_backward_input(Dual(g), Dual(b), c.xs, c.s, c.p).value;
    };
    auto Bw = [&](const Tensor& g, const Tensor& a) {
      return dual::conv2d_backward_weight(Dual(g), Dual(a), c.ws, c.s, c.p).value;
    };
    const double l1 = dot(u, F(v, W)), r1 = dot(Bx(u, W), v);
    const double l2 = dot(u, F(x, V)), r2 = dot(Bw(u, x), V);
    CHECK(std::abs(l1 - r1) <= 1e-12 * std::abs(l1));
    CHECK(std::abs(l2 - r2) <= 1e-12 * std::abs(l2));
    // K = 2 directions on every operand.
    const std::int64_t K = 2;
    auto block = [](const Shape& s, std::uint64_t seed) { return random_tensor(Shape{2, s.numel()}, seed); };
    const Dual X(x, block(c.xs, 71)), Wd(W, block(c.ws, 72)), U(u, block(u.shape(), 73));
    const Dual fy = dual::conv2d(X, Wd, c.s, c.p);
    const Dual fx = dual::conv2d_backward_input(U, Wd, c.xs, c.s, c.p);
    const Dual fw = dual::conv2d_backward_weight(U, X, c.ws, c.s, c.p);
    CHECK(rel_error(fy.value.to_vector(), y.to_vector()) <= 1e-15);
    CHECK(rel_error(fx.value.to_vector(), Bx(u, W).to_vector()) <= 1e-15);
    CHECK(rel_error(fw.value.to_vector(), Bw(u, x).to_vector()) <= 1e-15);
    for (std::int64_t k = 0; k < K; ++k) {
      auto plus = [](const Tensor& a, const Tensor& b) {
        std::vector<double> r = a.to_vector();
        for (std::size_t i = 0; i < r.size(); ++i) r[i] += b.at(static_cast<std::int64_t>(i));
        return r;
      };
      CHECK(rel_error(fy.tangent_row(k).to_vector(), plus(F(X.tangent_row(k), W), F(x, Wd.tangent_row(k)))) <= 1e-14);
      CHECK(rel_error(fx.tangent_row(k).to_vector(), plus(Bx(U.tangent_row(k), W), Bx(u, Wd.tangent_row(k)))) <= 1e-14);
      CHECK(rel_error(fw.tangent_row(k).to_vector(), plus(Bw(U.tangent_row(k), x), Bw(u, X.tangent_row(k)))) <= 1e-14);
    }
  }
}

#ifdef _OPENMP
TEST_CASE("conv2d: the threaded image loop gives the serial results (gradient, H v, mixed, K = 3)") {
  // Large enough that every kernel (forward, both adjoints, multi-bank) takes its threaded path.
  const ConvCase k{12, 3, 12, 12, 6, 3, 3, 1, 1, true};
  const Tensor w = conv_w(k);
  const Tensor lam = random_tensor(Shape{k.W}, 4, 0.5, 1.5);
  const Tensor V = random_tensor(Shape{3, w.numel()}, 6);
  auto f = [k](const Var& ww, const Var& ll) { return conv_loss(k, ww, ll); };
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const MixedResult serial = mixed_vjp(f, w, lam, V, true);
  omp_set_num_threads(2);
  const MixedResult threaded = mixed_vjp(f, w, lam, V, true);
  omp_set_num_threads(saved);
  CHECK(rel_error(serial.grad_w.to_vector(), threaded.grad_w.to_vector()) <= 1e-12);
  CHECK(rel_error(serial.hvp.to_vector(), threaded.hvp.to_vector()) <= 1e-12);
  CHECK(rel_error(serial.mixed.to_vector(), threaded.mixed.to_vector()) <= 1e-12);
}
#endif

TEST_CASE("conv2d and channel_bias: errors name the op and the shapes") {
  Tape t;
  const Var x = t.variable(Tensor::zeros(Shape{2, 3, 5, 5}, DType::f64));
  const Var w = t.variable(Tensor::zeros(Shape{4, 3, 3, 3}, DType::f64));
  check_error([&] { conv2d(t.variable(Tensor::zeros(Shape{3, 5, 5}, DType::f64)), w); }, {"conv2d", "[3, 5, 5]"});
  check_error([&] { conv2d(x, t.variable(Tensor::zeros(Shape{4, 2, 3, 3}, DType::f64))); },
              {"conv2d", "channel", "[2, 3, 5, 5]", "[4, 2, 3, 3]"});
  check_error([&] { conv2d(x, t.variable(Tensor::zeros(Shape{4, 3, 6, 6}, DType::f64))); },
              {"conv2d", "larger than the padded input", "[4, 3, 6, 6]"});
  check_error([&] { conv2d(x, t.variable(Tensor::zeros(Shape{4, 3, 3, 3}, DType::f32))); },
              {"conv2d", "mixed dtypes"});
  check_error([&] { conv2d(x, w, 0, 0); }, {"conv2d", "stride"});
  check_error([&] { conv2d(x, w, t.variable(Tensor::zeros(Shape{3}, DType::f64))); }, {"conv2d", "bias", "[3]"});
  check_error([&] { channel_bias(x, t.variable(Tensor::zeros(Shape{4}, DType::f64))); },
              {"channel_bias", "[4]", "[2, 3, 5, 5]"});
  // A padded input may be just large enough.
  CHECK(conv2d(x, t.variable(Tensor::zeros(Shape{4, 3, 7, 7}, DType::f64)), 1, 1).shape() == Shape{2, 4, 1, 1});
}
