// Differentiable tensor ops. Binary ops broadcast as numpy does; their backward sums the
// gradient back to each input's shape. Every backward rule is itself written with these ops,
// so gradients can be differentiated again (cholla::grad with create_graph).
#pragma once

#include <cstdint>
#include <vector>

#include "autodiff/tensor.hpp"

namespace cholla {

// ---- arithmetic (ops_arithmetic.cpp) ------------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& x);
// x * s + t with constants s, t: the cheap path for tensor-scalar arithmetic.
Tensor affine(const Tensor& x, double scale, double shift);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(const Tensor& a, double b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(const Tensor& a, double b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(const Tensor& a, double b);
Tensor operator/(double a, const Tensor& b);

// ---- unary maths (ops_unary.cpp) ----------------------------------------------------------
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor log1p(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor square(const Tensor& x);
Tensor pow(const Tensor& x, double p);
Tensor pow(const Tensor& x, const Tensor& p);  // x > 0 where p's gradient is needed
Tensor abs(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor elu(const Tensor& x, double alpha = 1.0);
Tensor softplus(const Tensor& x);  // log(1 + exp(x)), stable for large |x|
Tensor reciprocal(const Tensor& x);

// ---- selection and comparison (ops_select.cpp) --------------------------------------------
// Comparisons return 0/1 tensors with no gradient.
Tensor greater(const Tensor& a, const Tensor& b);
Tensor less(const Tensor& a, const Tensor& b);
// cond != 0 ? a : b, broadcasting all three. No gradient flows to cond.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor clamp(const Tensor& x, double lo, double hi);
Tensor maximum(const Tensor& a, const Tensor& b);  // ties send the gradient to a
Tensor minimum(const Tensor& a, const Tensor& b);

// ---- reductions (ops_reduce.cpp) ----------------------------------------------------------
Tensor sum(const Tensor& x);  // all elements, shape []
Tensor sum(const Tensor& x, std::vector<int64_t> dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, std::vector<int64_t> dims, bool keepdim = false);
Tensor logsumexp(const Tensor& x);
Tensor logsumexp(const Tensor& x, std::vector<int64_t> dims, bool keepdim = false);
Tensor max(const Tensor& x, std::vector<int64_t> dims, bool keepdim = false);
Tensor softmax(const Tensor& x, int64_t dim = -1);
Tensor log_softmax(const Tensor& x, int64_t dim = -1);
// Sums over broadcast dimensions so that the result has `shape` (backward of broadcasting).
Tensor sum_to(const Tensor& x, const Shape& shape);
// Broadcasts x to `shape` (numpy rules).
Tensor expand(const Tensor& x, const Shape& shape);

// ---- shape ops (ops_shape.cpp) ------------------------------------------------------------
Tensor reshape(const Tensor& x, Shape shape);  // one dimension may be -1
Tensor transpose(const Tensor& x);             // swaps the last two dimensions
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor squeeze(const Tensor& x, int64_t dim);  // dimension must have size 1
// Elements start, start+step, ... < stop along `dim` (negative start/stop count from the end).
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t stop, int64_t step = 1);
Tensor select(const Tensor& x, int64_t dim, int64_t index);  // removes `dim`
Tensor index_select(const Tensor& x, int64_t dim, const std::vector<int64_t>& indices);
Tensor concat(const std::vector<Tensor>& xs, int64_t dim);
Tensor stack(const std::vector<Tensor>& xs, int64_t dim = 0);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim);

// Internal adjoints of slicing and index_select (public so users' ops can use them too).
// Writes x into a zero tensor of `shape` at the slice positions / adds rows at `indices`.
Tensor slice_scatter(const Tensor& x, const Shape& shape, int64_t dim, int64_t start,
                     int64_t step);
Tensor index_add(const Tensor& x, const Shape& shape, int64_t dim,
                 const std::vector<int64_t>& indices);

}  // namespace cholla
