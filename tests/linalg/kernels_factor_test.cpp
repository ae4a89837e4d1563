// potrf, potri, getrf, getrs, inverse, syevd, gelqf and gesvd: identities (L L^T = A, X A = I,
// P L U = A^T, A X = B, U^T diag(w) U = A, L Q = A, Q Q^T = I, U diag(s) V^T = A) and LAPACK's info semantics. Padded
// strides check that nothing outside a matrix is touched; the unread triangle is NaN.
#include <doctest/doctest.h>

#include <cstring>
#include <set>

#include "linalg/detail/kernels/kernels.hpp"
#include "tests/linalg/kernels_test_util.hpp"

namespace k = cholla::linalg::kernels;
using namespace kernels_test;

namespace {

constexpr int64_t kPad = 2;

// Leading minors of order <= k are PD, the one of order k + 1 is not: A = L L^T with the
// k-th pivot pushed from L[k][k]^2 down to -1.
Vec fails_at(Rng& rng, int64_t n, int64_t k) {
  Vec L = random_tri(rng, n, true);
  for (double& x : L) x = std::isnan(x) ? 0.0 : x;
  Vec A = ref_gemm(false, true, n, n, n, L.data(), L.data());
  A[k * n + k] -= L[k * n + k] * L[k * n + k] + 1.0;
  return A;
}

void poison_other_triangle(bool lower, int64_t n, double* a) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      if (lower ? j > i : j < i) a[i * n + j] = kNaN;
}

std::set<int64_t> probe_orders(int64_t n) { return {0, n / 2, n - 1}; }

}  // namespace

TEST_CASE("potrf: L L^T = A (lower) and U^T U = A (upper), other triangle zeroed") {
  Rng rng;
  for (int64_t n : kSizes)
    for (int64_t batch : kBatches)
      for (bool lower : kBools) {
        CAPTURE(n); CAPTURE(batch); CAPTURE(lower);
        const int64_t stride = n * n + kPad;
        std::vector<Vec> As;
        for (int64_t b = 0; b < batch; ++b) As.push_back(random_spd(rng, n));
        Vec A = stack(As, stride);
        for (int64_t b = 0; b < batch; ++b) poison_other_triangle(lower, n, &A[b * stride]);
        std::vector<int64_t> info(static_cast<size_t>(batch), -1);
        k::potrf(lower, n, A.data(), stride, batch, info.data());
        for (int64_t b = 0; b < batch; ++b) {
          CHECK(info[b] == 0);
          const double* f = &A[b * stride];
          for (int64_t i = 0; i < n; ++i) {
            CHECK(f[i * n + i] > 0.0);
            for (int64_t j = 0; j < n; ++j)
              if (lower ? j > i : j < i) CHECK(f[i * n + j] == 0.0);
          }
          const Vec got = ref_gemm(!lower, lower, n, n, n, f, f);
          CHECK_CLOSE(got.data(), As[b].data(), n * n, 1e-14 * n);
          CHECK(std::isnan(f[n * n]));  // padding untouched
        }
      }
}

TEST_CASE("potrf: info is the order of the first failing leading minor, per batch element") {
  Rng rng;
  for (int64_t n : kSizes)
    for (int64_t kf : probe_orders(n))
      for (bool lower : kBools)
        for (int kind = 0; kind < 3; ++kind) {  // negative pivot, NaN pivot, NaN in row kf
          if (kind == 2 && kf == 0) continue;
          CAPTURE(n); CAPTURE(kf); CAPTURE(lower); CAPTURE(kind);
          Vec bad = kind == 0 ? fails_at(rng, n, kf) : random_spd(rng, n);
          if (kind == 1) bad[kf * n + kf] = kNaN;
          if (kind == 2) bad[kf * n] = bad[kf] = kNaN;  // read before pivot kf, after pivot 0
          Vec A = stack({random_spd(rng, n), bad, random_spd(rng, n)}, n * n);
          std::vector<int64_t> info(3, -1);
          k::potrf(lower, n, A.data(), n * n, 3, info.data());
          CHECK(info == std::vector<int64_t>{0, kf + 1, 0});
        }
}

TEST_CASE("potri: X (T T^T) = I (lower), X (T^T T) = I (upper), X symmetric") {
  Rng rng;
  for (int64_t n : kSizes)
    for (int64_t batch : kBatches)
      for (bool lower : kBools) {
        CAPTURE(n); CAPTURE(batch); CAPTURE(lower);
        const int64_t stride = n * n + kPad;
        std::vector<Vec> Ts;
        for (int64_t b = 0; b < batch; ++b) Ts.push_back(random_tri(rng, n, lower));
        Vec X = stack(Ts, stride);
        std::vector<int64_t> info(static_cast<size_t>(batch), -1);
        k::potri(lower, n, X.data(), stride, batch, info.data());
        const Vec I = identity(n);
        for (int64_t b = 0; b < batch; ++b) {
          CHECK(info[b] == 0);
          const Vec T = tri_op(Ts[b].data(), n, lower, false);
          const Vec A = ref_gemm(!lower, lower, n, n, n, T.data(), T.data());
          const double* x = &X[b * stride];
          const Vec XA = ref_gemm(false, false, n, n, n, x, A.data());
          CHECK_CLOSE(XA.data(), I.data(), n * n, 1e-12 * n);
          for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < i; ++j) CHECK(x[i * n + j] == x[j * n + i]);
          CHECK(std::isnan(x[n * n]));
        }
        // An exact zero on the diagonal is reported by its 1-based position.
        for (int64_t kf : probe_orders(n)) {
          Vec Z = Ts[0];
          Z[kf * n + kf] = 0.0;
          int64_t zinfo = -1;
          k::potri(lower, n, Z.data(), n * n, 1, &zinfo);
          CHECK(zinfo == kf + 1);
        }
      }
}

// Checks the documented meaning of getrf's output: with M(i, j) = F(j, i) the column-major
// view of the factored buffer F, and P the product of the swaps (i, pivots[i]),
// A^T = P L U with L unit lower and U upper from M.
void check_getrf(int64_t n, const double* F, const int64_t* piv, const Vec& A) {
  Vec L(static_cast<size_t>(n * n), 0.0), U(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const double mij = F[j * n + i];
      if (i > j) L[i * n + j] = mij;
      else U[i * n + j] = mij;
      if (i == j) L[i * n + j] = 1.0;
    }
  Vec PLU = ref_gemm(false, false, n, n, n, L.data(), U.data());
  for (int64_t i = n - 1; i >= 0; --i) {
    REQUIRE(piv[i] >= i);
    REQUIRE(piv[i] < n);
    for (int64_t j = 0; j < n; ++j) std::swap(PLU[i * n + j], PLU[piv[i] * n + j]);
  }
  Vec At(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) At[i * n + j] = A[j * n + i];
  CHECK_CLOSE(PLU.data(), At.data(), n * n, 1e-13 * n);
}

TEST_CASE("getrf: P L U reproduces A^T; singular matrices report the zero pivot") {
  Rng rng;
  for (int64_t n : kSizes)
    for (int64_t batch : kBatches) {
      CAPTURE(n); CAPTURE(batch);
      const int64_t stride = n * n + kPad;
      std::vector<Vec> As;
      for (int64_t b = 0; b < batch; ++b) As.push_back(rng.vec(n * n));
      Vec F = stack(As, stride);
      std::vector<int64_t> piv(static_cast<size_t>(batch * n), -1), info(batch, -1);
      k::getrf(n, F.data(), stride, piv.data(), batch, info.data());
      for (int64_t b = 0; b < batch; ++b) {
        CHECK(info[b] == 0);
        check_getrf(n, &F[b * stride], &piv[b * n], As[b]);
        CHECK(std::isnan(F[b * stride + n * n]));
      }
      // A zero row j makes column j of A^T zero: pivot j is exactly zero, and the
      // factorisation is completed anyway.
      for (int64_t j : probe_orders(n)) {
        CAPTURE(j);
        Vec S = rng.vec(n * n);
        std::fill(S.begin() + j * n, S.begin() + (j + 1) * n, 0.0);
        Vec G = S;
        std::vector<int64_t> spiv(static_cast<size_t>(n));
        int64_t sinfo = -1;
        k::getrf(n, G.data(), n * n, spiv.data(), 1, &sinfo);
        CHECK(sinfo == j + 1);
        check_getrf(n, G.data(), spiv.data(), S);
      }
    }
}

TEST_CASE("getrs: A X = B and A^T X = B from getrf's factors, shared or per-matrix") {
  Rng rng;
  for (int64_t n : kSizes)
    for (int64_t batch : kBatches)
      for (bool transpose : kBools)
        for (bool shared : kBools) {
          CAPTURE(n); CAPTURE(batch); CAPTURE(transpose); CAPTURE(shared);
          const int64_t nrhs = 3, count_a = shared ? 1 : batch, stride = n * n + kPad;
          std::vector<Vec> As;
          for (int64_t b = 0; b < count_a; ++b) As.push_back(rng.vec(n * n));
          Vec F = stack(As, stride);
          std::vector<int64_t> piv(static_cast<size_t>(count_a * n)), info(static_cast<size_t>(count_a));
          k::getrf(n, F.data(), stride, piv.data(), count_a, info.data());
          const Vec B = rng.vec(batch * n * nrhs);
          Vec X = B;
          k::getrs(transpose, n, nrhs, F.data(), shared ? 0 : stride, piv.data(), shared ? 0 : n,
                   X.data(), n * nrhs, batch);
          for (int64_t b = 0; b < batch; ++b) {
            const Vec AX = ref_gemm(transpose, false, n, nrhs, n, As[shared ? 0 : b].data(), &X[b * n * nrhs]);
            CHECK(max_diff(AX.data(), &B[b * n * nrhs], n * nrhs) < 1e-10 * n);
          }
        }
}

TEST_CASE("inverse: A X = X A = I; singular matrices report info > 0") {
  Rng rng;
  for (int64_t n : kSizes)
    for (int64_t batch : kBatches) {
      CAPTURE(n); CAPTURE(batch);
      const int64_t stride = n * n + kPad;
      std::vector<Vec> As;
      for (int64_t b = 0; b < batch; ++b) As.push_back(rng.vec(n * n));
      Vec X = stack(As, stride);
      std::vector<int64_t> info(static_cast<size_t>(batch), -1);
      k::inverse(n, X.data(), stride, batch, info.data());
      const Vec I = identity(n);
      for (int64_t b = 0; b < batch; ++b) {
        CHECK(info[b] == 0);
        const double* x = &X[b * stride];
        CHECK_CLOSE(ref_gemm(false, false, n, n, n, As[b].data(), x).data(), I.data(), n * n,
                    1e-11 * n);
        CHECK_CLOSE(ref_gemm(false, false, n, n, n, x, As[b].data()).data(), I.data(), n * n,
                    1e-11 * n);
        CHECK(std::isnan(x[n * n]));
      }
      Vec S = rng.vec(n * n);
      std::fill(S.begin() + (n / 2) * n, S.begin() + (n / 2 + 1) * n, 0.0);
      int64_t sinfo = -1;
      k::inverse(n, S.data(), n * n, 1, &sinfo);
      CHECK(sinfo == n / 2 + 1);
    }
}

TEST_CASE("syevd: U^T diag(w) U = A, U U^T = I, w ascending, sign rule, lower read only") {
  Rng rng;
  for (int64_t n : kSizes)
    for (int64_t batch : kBatches) {
      CAPTURE(n); CAPTURE(batch);
      const int64_t stride = n * n + kPad;
      std::vector<Vec> As;
      for (int64_t b = 0; b < batch; ++b) {
        const Vec M = rng.vec(n * n);
        Vec S(static_cast<size_t>(n * n));
        for (int64_t i = 0; i < n; ++i)
          for (int64_t j = 0; j < n; ++j) S[i * n + j] = M[i * n + j] + M[j * n + i];
        As.push_back(S);
      }
      Vec U = stack(As, stride);
      for (int64_t b = 0; b < batch; ++b) poison_other_triangle(true, n, &U[b * stride]);
      Vec w(static_cast<size_t>(batch * n));
      std::vector<int64_t> info(static_cast<size_t>(batch), -1);
      k::syevd(n, U.data(), stride, w.data(), batch, info.data());
      const Vec I = identity(n);
      for (int64_t b = 0; b < batch; ++b) {
        CHECK(info[b] == 0);
        const double* u = &U[b * stride];
        const double* wb = &w[b * n];
        for (int64_t i = 1; i < n; ++i) CHECK(wb[i - 1] <= wb[i]);
        Vec DU(u, u + n * n);
        for (int64_t i = 0; i < n; ++i)
          for (int64_t j = 0; j < n; ++j) DU[i * n + j] *= wb[i];
        CHECK_CLOSE(ref_gemm(true, false, n, n, n, u, DU.data()).data(), As[b].data(), n * n,
                    1e-13 * n);
        CHECK_CLOSE(ref_gemm(false, true, n, n, n, u, u).data(), I.data(), n * n, 1e-13 * n);
        for (int64_t i = 0; i < n; ++i) {
          int64_t best = 0;
          for (int64_t j = 1; j < n; ++j)
            if (std::fabs(u[i * n + j]) > std::fabs(u[i * n + best])) best = j;
          CHECK(u[i * n + best] > 0.0);
        }
      }
    }
}

TEST_CASE("gelqf: L Q = A, Q Q^T = I, L lower triangular") {
  Rng rng;
  for (int64_t s : kSizes)
    for (const auto& mn : {std::array<int64_t, 2>{s, s}, {s, s + 3}, {1, s}})
      for (int64_t batch : kBatches) {
        const int64_t m = mn[0], n = mn[1];  // named, not bound: clang 14 lambdas cannot capture bindings
        CAPTURE(m); CAPTURE(n); CAPTURE(batch);
        const int64_t stride = m * n + kPad;
        std::vector<Vec> As;
        for (int64_t b = 0; b < batch; ++b) As.push_back(rng.vec(m * n));
        Vec Q = stack(As, stride);
        Vec L(static_cast<size_t>(batch * m * m), kNaN);
        k::gelqf(m, n, Q.data(), stride, L.data(), batch);
        const Vec I = identity(m);
        for (int64_t b = 0; b < batch; ++b) {
          const double* q = &Q[b * stride];
          const double* l = &L[b * m * m];
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = i + 1; j < m; ++j) CHECK(l[i * m + j] == 0.0);
          CHECK_CLOSE(ref_gemm(false, false, m, n, m, l, q).data(), As[b].data(), m * n,
                      1e-13 * n);
          CHECK_CLOSE(ref_gemm(false, true, m, m, n, q, q).data(), I.data(), m * m, 1e-13 * n);
          CHECK(std::isnan(q[m * n]));
        }
      }
}

TEST_CASE("gesvd: U diag(s) V^T = A, U and V orthogonal, s descending, A untouched") {
  Rng rng;
  for (int64_t n : kSizes)
    for (int64_t batch : kBatches) {
      CAPTURE(n); CAPTURE(batch);
      const int64_t stride = n * n + kPad;
      std::vector<Vec> As;
      for (int64_t b = 0; b < batch; ++b) {
        Vec M = rng.vec(n * n);
        if (b == 1 && n > 1)  // a singular matrix: row 0 repeated in row 1
          std::copy_n(M.begin(), n, M.begin() + n);
        As.push_back(M);
      }
      const Vec A = stack(As, stride);
      Vec input = A, U(static_cast<size_t>(batch * n * n)), Vt(U.size()), s(static_cast<size_t>(batch * n));
      std::vector<int64_t> info(static_cast<size_t>(batch), -1);
      k::gesvd(n, input.data(), stride, U.data(), s.data(), Vt.data(), batch, info.data());
      CHECK(std::memcmp(input.data(), A.data(), A.size() * sizeof(double)) == 0);  // padding is NaN
      for (int64_t b = 0; b < batch; ++b) {
        CHECK(info[b] == 0);
        const double* u = &U[b * n * n];
        const double* vt = &Vt[b * n * n];
        Vec US(u, u + n * n);
        for (int64_t i = 0; i < n; ++i)
          for (int64_t j = 0; j < n; ++j) US[i * n + j] *= s[b * n + j];
        const Vec R = ref_gemm(false, false, n, n, n, US.data(), vt);
        CHECK(max_diff(R.data(), &A[b * stride], n * n) < 1e-12 * n);
        const Vec UtU = ref_gemm(true, false, n, n, n, u, u), VVt = ref_gemm(false, true, n, n, n, vt, vt);
        CHECK(max_diff(UtU.data(), identity(n).data(), n * n) < 1e-12 * n);
        CHECK(max_diff(VVt.data(), identity(n).data(), n * n) < 1e-12 * n);
        for (int64_t i = 0; i + 1 < n; ++i) CHECK(s[b * n + i] >= s[b * n + i + 1]);
        CHECK(s[b * n + n - 1] >= 0.0);
        if (b == 1 && n > 1) CHECK(s[b * n + n - 1] < 1e-12 * s[b * n]);
      }
    }
}
