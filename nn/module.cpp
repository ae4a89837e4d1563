#include "nn/module.hpp"

#include <cxxabi.h>
#include <fmt/core.h>

#include <cstdlib>
#include <memory>
#include <typeinfo>
#include <unordered_set>

#include "autodiff/shape.hpp"

namespace cholla::nn {

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

std::vector<NamedTensor> Module::named_parameters() const {
  std::vector<NamedTensor> all;
  collect("", all);
  // A tensor registered twice (weight tying) must be updated once by an optimiser and saved
  // once in a checkpoint: keep its first name only.
  std::unordered_set<const void*> seen;
  std::vector<NamedTensor> out;
  for (auto& entry : all)
    if (seen.insert(entry.second.id()).second) out.push_back(std::move(entry));
  return out;
}

void Module::collect(const std::string& prefix, std::vector<NamedTensor>& out) const {
  for (const auto& [name, t] : params_) out.emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out);
}

void Module::train(bool on) {
  training_ = on;
  for (auto& entry : children_) entry.second->train(on);
}

void Module::zero_grad() {
  for (Tensor& t : parameters()) t.zero_grad();
}

std::string Module::type_name() const {
  const char* mangled = typeid(*this).name();
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(
      abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
  std::string name = status == 0 && demangled ? demangled.get() : mangled;
  // The class name alone, as PyTorch prints it: "cholla::nn::Linear" and
  // "(anonymous namespace)::Net" read as "Linear" and "Net" (template arguments are kept).
  const size_t scope = name.rfind("::", name.find('<'));
  return scope == std::string::npos ? name : name.substr(scope + 2);
}

void Module::check_name(const std::string& name, const char* op) const {
  if (name.empty() || name.find('.') != std::string::npos)
    throw DomainError(op, fmt::format("name '{}' must be non-empty and contain no '.' (dots "
                                      "separate the levels of a dotted path). Pick another name.",
                                      name));
  for (const auto& entry : params_)
    if (entry.first == name)
      throw DomainError(op, fmt::format("a parameter named '{}' is already registered in this "
                                        "{}. Names must be unique within a module.",
                                        name, type_name()));
  for (const auto& entry : children_)
    if (entry.first == name)
      throw DomainError(op, fmt::format("a sub-module named '{}' is already registered in this "
                                        "{}. Names must be unique within a module.",
                                        name, type_name()));
}

Tensor Module::register_parameter(const std::string& name, Tensor value) {
  check_name(name, "register_parameter");
  if (!value.defined())
    throw DomainError("register_parameter",
                      fmt::format("parameter '{}' is an undefined tensor. Initialise it first "
                                  "(e.g. Tensor::zeros(shape)).",
                                  name));
  if (!value.is_leaf())
    throw GraphError("register_parameter",
                     fmt::format("parameter '{}' was produced by an op; parameters must be leaves. "
                                 "Register value.detach() instead.",
                                 name));
  value.requires_grad(true);
  params_.emplace_back(name, value);
  return value;
}

void Module::add_child(const std::string& name, Module& child) {
  check_name(name, "register_module");
  if (&child == this)
    throw DomainError("register_module", "a module cannot be its own sub-module.");
  children_.emplace_back(name, &child);
}

namespace {

void print_tree(const Module& m, const std::string& indent, std::string& out) {
  const std::string extra = m.extra_repr();
  out += m.type_name() + "(" + extra;
  const bool list_params = extra.empty() && !m.own_parameters().empty();
  if (m.children().empty() && !list_params) {
    out += ")";
    return;
  }
  out += "\n";
  if (list_params)
    for (const auto& [name, t] : m.own_parameters())
      out += indent + "  (" + name + "): Tensor" + format_shape(t.shape()) + "\n";
  for (const auto& [name, child] : m.children()) {
    out += indent + "  (" + name + "): ";
    print_tree(*child, indent + "  ", out);
    out += "\n";
  }
  out += indent + ")";
}

}  // namespace

std::string to_string(const Module& module) {
  std::string out;
  print_tree(module, "", out);
  return out;
}

}  // namespace cholla::nn
