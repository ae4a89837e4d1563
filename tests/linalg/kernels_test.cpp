// gemm, trmm and trsm against naive references and identities. Sizes straddle kSmallN so
// both the hand-written and the BLAS paths run; batches include stride-0 broadcasting.
#include <doctest/doctest.h>

#include <cstdio>
#include <stdexcept>

#include <unistd.h>

#include "linalg/detail/kernels/kernels.hpp"
#include "tests/linalg/kernels_test_util.hpp"

namespace k = cholla::linalg::kernels;
using namespace kernels_test;


TEST_CASE("gemm: all flags, sizes and broadcasts against a triple loop") {
  Rng rng;
  for (int64_t s : kSizes)
    for (const auto& mnk : {std::array<int64_t, 3>{s, s, s}, {s, s + 1, 2}, {3, s, s + 2}})
      for (int64_t batch : kBatches)
        for (bool ta : kBools)
          for (bool tb : kBools)
            for (int mode = 0; mode < 4; ++mode)
              for (double beta : {0.0, 0.5}) {
                // Named, not bound: clang 14 lambdas cannot capture structured bindings.
                const int64_t m = mnk[0], n = mnk[1], kk = mnk[2];
                CAPTURE(m); CAPTURE(n); CAPTURE(kk); CAPTURE(batch);
                CAPTURE(ta); CAPTURE(tb); CAPTURE(mode); CAPTURE(beta);
                const bool bcast_a = mode & 1, bcast_b = mode & 2;
                const double alpha = -0.7;
                std::vector<Vec> As, Bs, Cs;
                for (int64_t b = 0; b < batch; ++b) {
                  As.push_back(rng.vec(m * kk));
                  Bs.push_back(rng.vec(kk * n));
                  Cs.push_back(beta == 0.0 ? Vec(static_cast<size_t>(m * n), kNaN)
                                           : rng.vec(m * n));
                }
                const Vec A = stack(As, m * kk), B = stack(Bs, kk * n);
                Vec C = stack(Cs, m * n);
                k::gemm(ta, tb, m, n, kk, alpha, A.data(), bcast_a ? 0 : m * kk, B.data(),
                        bcast_b ? 0 : kk * n, beta, C.data(), m * n, batch);
                for (int64_t b = 0; b < batch; ++b) {
                  const size_t ia = bcast_a ? 0 : static_cast<size_t>(b);
                  const size_t ib = bcast_b ? 0 : static_cast<size_t>(b);
                  Vec want = ref_gemm(ta, tb, m, n, kk, As[ia].data(), Bs[ib].data());
                  for (int64_t i = 0; i < m * n; ++i)
                    want[i] = alpha * want[i] + (beta == 0.0 ? 0.0 : beta * Cs[b][i]);
                  CHECK_CLOSE(C.data() + b * m * n, want.data(), m * n, 1e-13 * kk);
                }
              }
}

TEST_CASE("gemm: k == 0 and alpha == 0 only scale C") {
  Vec C = {1.0, kNaN};
  k::gemm(false, false, 1, 2, 0, 1.0, nullptr, 0, nullptr, 0, 0.0, C.data(), 2, 1);
  CHECK(C == Vec{0.0, 0.0});
  Vec A = {kNaN}, B = {kNaN, kNaN}, D = {1.0, 2.0};
  k::gemm(false, false, 1, 2, 1, 0.0, A.data(), 0, B.data(), 0, 2.0, D.data(), 2, 1);
  CHECK(D == Vec{2.0, 4.0});
}

// Shared sweep of trmm/trsm: fn(rightside, lower, transpose, n, other, batch, bcast).
template <class Fn>
void triangular_sweep(Fn fn) {
  for (int64_t n : kSizes)
    for (int64_t other : {int64_t{1}, int64_t{4}, n})
      for (int64_t batch : kBatches)
        for (bool right : kBools)
          for (bool lower : kBools)
            for (bool trans : kBools)
              for (bool bcast : kBools) {
                CAPTURE(n); CAPTURE(other); CAPTURE(batch);
                CAPTURE(right); CAPTURE(lower); CAPTURE(trans); CAPTURE(bcast);
                fn(right, lower, trans, n, other, batch, bcast);
              }
}

TEST_CASE("trmm: all flags, sizes and broadcasts against a triple loop") {
  Rng rng;
  triangular_sweep([&](bool right, bool lower, bool trans, int64_t n, int64_t other,
                       int64_t batch, bool bcast) {
    const int64_t m = right ? other : n, nc = right ? n : other;
    const double alpha = 1.5;
    std::vector<Vec> Ts, Bs;
    for (int64_t b = 0; b < batch; ++b) {
      Ts.push_back(random_tri(rng, n, lower));
      Bs.push_back(rng.vec(m * nc));
    }
    const Vec T = stack(Ts, n * n);
    Vec B = stack(Bs, m * nc);
    k::trmm(right, lower, trans, m, nc, alpha, T.data(), bcast ? 0 : n * n, B.data(), m * nc,
            batch);
    for (int64_t b = 0; b < batch; ++b) {
      const Vec op = tri_op(Ts[bcast ? 0 : static_cast<size_t>(b)].data(), n, lower, trans);
      Vec want = right ? ref_gemm(false, false, m, nc, n, Bs[b].data(), op.data())
                       : ref_gemm(false, false, m, nc, n, op.data(), Bs[b].data());
      for (double& x : want) x *= alpha;
      CHECK_CLOSE(B.data() + b * m * nc, want.data(), m * nc, 1e-13 * n);
    }
  });
}

TEST_CASE("trsm: solves op(T) X = alpha B and undoes trmm") {
  Rng rng;
  triangular_sweep([&](bool right, bool lower, bool trans, int64_t n, int64_t other,
                       int64_t batch, bool bcast) {
    const int64_t m = right ? other : n, nc = right ? n : other;
    const double alpha = -2.5;
    std::vector<Vec> Ts, Bs;
    for (int64_t b = 0; b < batch; ++b) {
      Ts.push_back(random_tri(rng, n, lower));
      Bs.push_back(rng.vec(m * nc));
    }
    const Vec T = stack(Ts, n * n);
    const int64_t st = bcast ? 0 : n * n;
    Vec X = stack(Bs, m * nc);
    k::trsm(right, lower, trans, m, nc, alpha, T.data(), st, X.data(), m * nc, batch);
    for (int64_t b = 0; b < batch; ++b) {
      const Vec op = tri_op(Ts[bcast ? 0 : static_cast<size_t>(b)].data(), n, lower, trans);
      const double* x = X.data() + b * m * nc;
      const Vec got = right ? ref_gemm(false, false, m, nc, n, x, op.data())
                            : ref_gemm(false, false, m, nc, n, op.data(), x);
      Vec want = Bs[b];
      for (double& v : want) v *= alpha;
      CHECK_CLOSE(got.data(), want.data(), m * nc, 1e-12 * n);
    }
    Vec Y = stack(Bs, m * nc);  // trsm(trmm(B)) == B with the same flags
    k::trmm(right, lower, trans, m, nc, 1.0, T.data(), st, Y.data(), m * nc, batch);
    k::trsm(right, lower, trans, m, nc, 1.0, T.data(), st, Y.data(), m * nc, batch);
    const Vec B0 = stack(Bs, m * nc);
    CHECK_CLOSE(Y.data(), B0.data(), batch * m * nc, 1e-12 * n);
  });
}

TEST_CASE("trsm and trmm: alpha == 0 zeroes B without reading T or B") {
  for (int64_t n : {int64_t{3}, int64_t{12}}) {
    const Vec T(static_cast<size_t>(n * n), kNaN);
    Vec B(static_cast<size_t>(2 * n * n), kNaN);
    k::trsm(false, true, false, n, n, 0.0, T.data(), 0, B.data(), n * n, 2);
    CHECK(B == Vec(B.size(), 0.0));
    B.assign(B.size(), kNaN);
    k::trmm(true, false, true, n, n, 0.0, T.data(), 0, B.data(), n * n, 2);
    CHECK(B == Vec(B.size(), 0.0));
  }
}

namespace {

// Redirects stdout and stderr (file descriptors, so C and Fortran writers are caught too)
// into a temporary file; bytes() restores them and says how much was written.
class CaptureOutput {
 public:
  CaptureOutput() {
    std::fflush(stdout);
    std::fflush(stderr);
    out_ = dup(1);
    err_ = dup(2);
    dup2(fileno(file_), 1);
    dup2(fileno(file_), 2);
  }
  long bytes() {
    std::fflush(stdout);
    std::fflush(stderr);
    dup2(out_, 1);
    dup2(err_, 2);
    close(out_);
    close(err_);
    std::fseek(file_, 0, SEEK_END);
    const long size = std::ftell(file_);
    std::fclose(file_);
    return size;
  }

 private:
  std::FILE* file_ = std::tmpfile();
  int out_ = -1;
  int err_ = -1;
};

}  // namespace

TEST_CASE("kernels: empty shapes and numerical failures print nothing") {
  Vec buf(2 * 81 * 4, 1.0);  // room for two 9 x 9 matrices, any layout below
  std::vector<int64_t> info(2, -1), piv(18, -1);
  double* a = buf.data();
  CaptureOutput capture;
  for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{3}, int64_t{9}}) {
    k::potrf(true, n, a, n * n, 2, info.data());  // all ones: not PD for n > 1
    k::potrf(false, n, a, n * n, 0, info.data());
    std::fill(buf.begin(), buf.end(), 0.0);
    k::potri(true, n, a, n * n, 2, info.data());  // zero diagonal
    k::getrf(n, a, n * n, piv.data(), 2, info.data());  // singular
    k::inverse(n, a, n * n, 2, info.data());
    k::syevd(n, a, n * n, a + 2 * n * n, 1, info.data());
    k::gelqf(n == 0 ? 0 : 1, n, a, n, a + 2 * n * n, 2);
    for (int64_t m : {int64_t{0}, int64_t{1}, n}) {
      k::gemm(false, true, m, n, m, 1.0, a, 0, a, 0, 0.0, a + 2 * n * n, m * n, 2);
      k::gemm(true, false, n, m, 0, 1.0, a, 0, a, 0, 0.0, a + 2 * n * n, m * n, 2);
      k::trsm(true, true, false, m, n, 1.0, a, 0, a + 2 * n * n, m * n, 2);
      k::trmm(false, false, true, n, m, 1.0, a, 0, a + 2 * n * n, m * n, 2);
    }
  }
  CHECK(capture.bytes() == 0);
}

TEST_CASE("kernels: impossible arguments throw std::invalid_argument") {
  double x = 1.0;
  int64_t info = 0;
  CHECK_THROWS_AS(k::potrf(true, -1, &x, 1, 1, &info), std::invalid_argument);
  CHECK_THROWS_AS(k::inverse(-2, &x, 1, 1, &info), std::invalid_argument);
  CHECK_THROWS_AS(k::gemm(false, false, 1, -1, 1, 1.0, &x, 0, &x, 0, 0.0, &x, 0, 1),
                  std::invalid_argument);
  CHECK_THROWS_AS(k::trsm(false, true, false, 1, 1, 1.0, &x, 0, &x, 0, -1),
                  std::invalid_argument);
  CHECK_THROWS_AS(k::gelqf(2, 1, &x, 2, &x, 1), std::invalid_argument);
}
