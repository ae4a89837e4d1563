#include "autodiff/tensor.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

#include "autodiff/rng.hpp"
#include "autodiff/shape.hpp"
#include "autodiff/storage.hpp"
#include "autodiff/tape.hpp"

namespace cholla {
namespace {

const TensorImpl& checked(const std::shared_ptr<TensorImpl>& impl, const char* what) {
  if (!impl)
    throw GraphError(what, "the tensor is undefined (default-constructed, or a gradient that "
                           "was never computed).");
  return *impl;
}

}  // namespace

Tensor Tensor::empty(Shape shape, const char* op) {
  auto impl = std::make_shared<TensorImpl>();
  impl->size = cholla::numel(shape, op);
  impl->storage = detail::allocate_storage(static_cast<size_t>(impl->size), shape, op);
  impl->shape = std::move(shape);
  return Tensor(std::move(impl));
}

Tensor Tensor::make(Shape shape, std::vector<double> values) {
  if (static_cast<int64_t>(values.size()) != cholla::numel(shape, "Tensor::from"))
    throw ShapeError("Tensor::from",
                     fmt::format("{} values given for shape {}, which holds {}.", values.size(),
                                 format_shape(shape), cholla::numel(shape)),
                     "values", {shape});
  Tensor t = empty(std::move(shape), "Tensor::from");
  std::copy(values.begin(), values.end(), t.impl_->storage.get());
  return t;
}

namespace {

Tensor filled(const Shape& shape, double value, const char* op) {
  Tensor t = Tensor::empty(shape, op);
  std::fill(t.mutable_data().begin(), t.mutable_data().end(), value);
  return t;
}

}  // namespace

Tensor Tensor::full(const Shape& shape, double value) { return filled(shape, value, "full"); }
Tensor Tensor::zeros(const Shape& shape) { return filled(shape, 0.0, "zeros"); }
Tensor Tensor::ones(const Shape& shape) { return filled(shape, 1.0, "ones"); }
Tensor Tensor::scalar(double value) { return filled({}, value, "scalar"); }
Tensor Tensor::from(const Shape& shape, std::vector<double> values) {
  return make(shape, std::move(values));
}

Tensor Tensor::eye(int64_t n) {
  Tensor t = empty({n, n}, "eye");
  std::fill_n(t.impl_->storage.get(), t.impl_->size, 0.0);
  for (int64_t i = 0; i < n; ++i) t.impl_->storage[static_cast<size_t>(i * n + i)] = 1.0;
  return t;
}

Tensor Tensor::arange(int64_t n) {
  Tensor t = empty({n}, "arange");
  for (int64_t i = 0; i < n; ++i) t.impl_->storage[static_cast<size_t>(i)] = static_cast<double>(i);
  return t;
}

Tensor Tensor::randn(const Shape& shape, Rng& rng) {
  Tensor t = empty(shape, "randn");
  for (double& v : t.mutable_data()) v = rng.normal();
  return t;
}

Tensor Tensor::uniform(const Shape& shape, double lo, double hi, Rng& rng) {
  Tensor t = empty(shape, "uniform");
  for (double& v : t.mutable_data()) v = rng.uniform(lo, hi);
  return t;
}

const Shape& Tensor::shape() const { return checked(impl_, "shape").shape; }
int64_t Tensor::numel() const { return checked(impl_, "numel").size; }

int64_t Tensor::size(int64_t d) const {
  return shape()[static_cast<size_t>(normalize_dim(d, dim(), "size"))];
}

std::span<const double> Tensor::data() const {
  const TensorImpl& t = checked(impl_, "data");
  return {t.storage.get(), static_cast<size_t>(t.size)};
}

std::span<double> Tensor::mutable_data() {
  checked(impl_, "mutable_data");
  return {impl_->storage.get(), static_cast<size_t>(impl_->size)};
}

double Tensor::item() const {
  if (numel() != 1)
    throw ShapeError("item",
                     fmt::format("the tensor has shape {} ({} elements); item() needs exactly one.",
                                 format_shape(shape()), numel()),
                     "", {shape()});
  return impl_->storage[0];
}

double Tensor::at(std::initializer_list<int64_t> index) const {
  const Shape& s = shape();
  if (index.size() != s.size())
    throw ShapeError("at", fmt::format("{} indices given for a tensor of shape {}.", index.size(),
                                       format_shape(s)),
                     "", {s});
  int64_t flat = 0;
  size_t d = 0;
  for (int64_t i : index) {
    if (i < 0 || i >= s[d])
      throw ShapeError("at", fmt::format("index {} is out of range for dimension {} of shape {}.",
                                         i, d, format_shape(s)),
                       "", {s});
    flat = flat * s[d] + i;
    ++d;
  }
  return impl_->storage[static_cast<size_t>(flat)];
}

bool Tensor::requires_grad() const {
  const TensorImpl& t = checked(impl_, "requires_grad");
  return t.requires_grad || t.generation != 0;
}

Tensor& Tensor::requires_grad(bool on) {
  const TensorImpl& t = checked(impl_, "requires_grad");
  if (t.generation != 0)
    throw GraphError("requires_grad",
                     "only leaves (tensors no op produced) can be marked; call detach() first "
                     "to make a leaf with the same values.");
  impl_->requires_grad = on;
  return *this;
}

bool Tensor::is_leaf() const { return checked(impl_, "is_leaf").generation == 0; }
Tensor Tensor::grad() const { return checked(impl_, "grad").grad; }
void Tensor::zero_grad() { checked(impl_, "zero_grad"), impl_->grad = Tensor(); }

void Tensor::set_grad(Tensor g) {
  checked(impl_, "set_grad");
  if (g.defined() && g.shape() != shape())
    throw ShapeError("set_grad", fmt::format("gradient of shape {} for a tensor of shape {}.",
                                             format_shape(g.shape()), format_shape(shape())),
                     "", {g.shape(), shape()});
  impl_->grad = std::move(g);
}

Tensor Tensor::detach() const {
  const TensorImpl& t = checked(impl_, "detach");
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = t.shape;
  impl->size = t.size;
  impl->storage = t.storage;
  return Tensor(std::move(impl));
}

Tensor Tensor::clone() const {
  const TensorImpl& t = checked(impl_, "clone");
  Tensor out = empty(t.shape, "clone");
  std::copy_n(t.storage.get(), t.size, out.impl_->storage.get());
  return out;
}

std::string to_string(const Tensor& t) {
  if (!t.defined()) return "tensor(undefined)";
  const Shape& s = t.shape();
  auto values = t.data();
  std::string out = "tensor(";
  // Brackets open and close where the row-major index crosses a block of each dimension.
  std::vector<int64_t> block(s.size());
  int64_t size = 1;
  for (size_t d = s.size(); d-- > 0;) block[d] = size *= s[d];
  const int64_t n = t.numel();
  const int64_t limit = 64;
  for (int64_t i = 0; i < n; ++i) {
    if (n > limit && i == limit / 2) {
      out += "..., ";
      i = n - limit / 2;
    }
    for (size_t d = 0; d < s.size(); ++d)
      if (i % block[d] == 0) out += "[";
    out += fmt::format("{:.6g}", values[static_cast<size_t>(i)]);
    for (size_t d = 0; d < s.size(); ++d)
      if ((i + 1) % block[d] == 0) out += "]";
    if (i + 1 < n) out += ", ";
  }
  return out + fmt::format(", shape={})", format_shape(s));
}

}  // namespace cholla
