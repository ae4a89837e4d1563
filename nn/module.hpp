// nn::Module: a named tree of parameters and sub-modules.
//
//   struct Net : nn::Module {
//     nn::Linear hidden{3, 32}, out{32, 1};
//     Net() { register_module("hidden", hidden); register_module("out", out); }
//     Tensor forward(const Tensor& x) { return out(tanh(hidden(x))); }
//   };
//
// Names are dotted paths in registration order, own parameters first ("hidden.weight",
// "hidden.bias", "out.weight", ...); checkpoints and optimiser state are keyed by them, so they
// must not depend on anything but the code that builds the module.
//
// A module keeps its own handle to each registered parameter: to change a parameter's values,
// write into it (mutable_data() under NoGrad, or nn::load), never assign a new tensor to the
// member, which would leave the module (and optimisers) holding the old one.
//
// A module registers its sub-modules by address, so modules are neither copyable nor movable:
// build them in place (members, std::make_shared, Sequential::emplace).
//
// Module itself has no virtual forward: a user's forward may return anything (a Tensor, a
// distribution). Modules that map one Tensor to one Tensor derive from nn::Layer, which is what
// Sequential chains.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "autodiff/tensor.hpp"

namespace cholla::nn {

using NamedTensor = std::pair<std::string, Tensor>;

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Every parameter of this module and its sub-modules, each once (a tensor shared between two
  // modules appears under its first name), in the order of named_parameters().
  std::vector<Tensor> parameters() const;
  std::vector<NamedTensor> named_parameters() const;
  // This module's own parameters and direct sub-modules, in registration order.
  const std::vector<NamedTensor>& own_parameters() const { return params_; }
  const std::vector<std::pair<std::string, Module*>>& children() const { return children_; }

  // Training mode (the default) or evaluation mode, for this module and all sub-modules.
  // Virtual so that a module with mode-dependent state can react; call the base version.
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Drops the accumulated gradient of every parameter.
  void zero_grad();

  // Type name used when printing; defaults to the demangled C++ class name.
  virtual std::string type_name() const;
  // Extra text inside the parentheses, e.g. "in=3, out=32, bias=true".
  virtual std::string extra_repr() const { return {}; }

 protected:
  // Makes `value` a parameter (a leaf that requires grad) named `name`; returns the handle that
  // the module should keep (the same tensor).
  Tensor register_parameter(const std::string& name, Tensor value);
  // Registers `child` (which must outlive this module, typically a member) under `name`.
  template <class M>
  M& register_module(const std::string& name, M& child) {
    add_child(name, child);
    return child;
  }

 private:
  void add_child(const std::string& name, Module& child);
  void check_name(const std::string& name, const char* op) const;
  void collect(const std::string& prefix, std::vector<NamedTensor>& out) const;

  std::vector<NamedTensor> params_;
  std::vector<std::pair<std::string, Module*>> children_;
  bool training_ = true;
};

// A module mapping one tensor to one tensor (layers, activations, Sequential).
class Layer : public Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }
};

// The module tree, one line per module (own parameters of modules without an extra_repr are
// listed with their shapes), e.g.
//   Net(
//     (hidden): Linear(in=3, out=32, bias=true)
//     (out): Linear(in=32, out=1, bias=true)
//   )
std::string to_string(const Module& module);

}  // namespace cholla::nn
