// Maps from free network outputs to valid distribution parameters.
//
// Packing order (the same as linalg::maketrian): the lower triangle, diagonal included, row by
// row. For d = 3 the six numbers v0..v5 fill
//
//     [ v0  .   .  ]
//     [ v1  v2  .  ]
//     [ v3  v4  v5 ]
//
// so the diagonal sits at positions i(i+1)/2 + i = 0, 2, 5, ...
//
// A network head for a d-dimensional Gaussian emits params_size(d) = d + d(d+1)/2 numbers per
// row: the first d are the mean, the rest go through fill_scale_tril.
#pragma once

#include <cstdint>

#include "autodiff/tensor.hpp"

namespace cholla::dist::transforms {

// How the free diagonal entries become positive.
enum class Diag {
  Softplus,    // log(1 + e^x): linear growth, gentle near 0 (TFP's FillScaleTriL default)
  Exp,         // e^x: the log-Cholesky parameterisation
  OnePlusElu,  // 1 + elu(x): e^x for x < 0, 1 + x above
};

struct ScaleTrilOptions {
  Diag diag = Diag::Softplus;
  double shift = 1e-5;  // added to the diagonal: keeps it away from 0 whatever the input
};

int64_t params_size(int64_t d);        // d + d(d+1)/2
int64_t triangular_size(int64_t d);    // d(d+1)/2
int64_t dim_from_triangular(int64_t n, const char* op);  // inverse of triangular_size

// The free value x with positive(x) = y for the chosen Diag map (y > 0): a head's bias that
// makes a zero input give the diagonal y.
double diagonal_preimage(double y, Diag diag);

// [..., d(d+1)/2] -> [..., d, d] lower-triangular, and back (the packing alone).
Tensor fill_triangular(const Tensor& v);
Tensor fill_triangular_inverse(const Tensor& L);

// [..., d(d+1)/2] -> a valid scale_tril [..., d, d] (positive diagonal) for any real input.
Tensor fill_scale_tril(const Tensor& v, const ScaleTrilOptions& options = {});
// The free vector that fill_scale_tril maps to L (L's diagonal must exceed `shift`).
Tensor fill_scale_tril_inverse(const Tensor& L, const ScaleTrilOptions& options = {});
// log |det J| of v -> packed L (batch shape): only the diagonal entries are transformed.
Tensor fill_scale_tril_log_abs_det_jacobian(const Tensor& v, const ScaleTrilOptions& options = {});

}  // namespace cholla::dist::transforms
