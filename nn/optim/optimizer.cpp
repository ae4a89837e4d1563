#include "nn/optim/optimizer.hpp"

#include <fmt/core.h>

#include <bit>
#include <cmath>
#include <map>
#include <span>
#include <unordered_map>
#include <unordered_set>

#include "autodiff/shape.hpp"
#include "autodiff/tape.hpp"
#include "nn/optim/schedule.hpp"

namespace cholla::optim {
// NaN and the infinities are the doubles whose exponent bits are all ones. Testing the bits
// (not std::isfinite) keeps the loop branch-free, so one pass over a gradient vectorises.
std::size_t Optimizer::count_nonfinite(std::span<const double> values) {
  constexpr uint64_t kExponent = 0x7ff0000000000000ULL;
  std::size_t bad = 0;
  for (double x : values) bad += (std::bit_cast<uint64_t>(x) & kExponent) == kExponent;
  return bad;
}

Optimizer::Optimizer(const char* kind, std::vector<std::vector<Tensor>> groups,
                     std::vector<std::string> buffers)
    : kind_(kind), groups_(std::move(groups)), buffer_names_(std::move(buffers)) {
  if (groups_.empty())
    throw DomainError(kind_, "no parameter groups were given. Pass model.parameters().");
  std::unordered_set<const void*> seen;
  std::size_t total = 0;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    for (std::size_t i = 0; i < groups_[g].size(); ++i) {
      const Tensor& p = groups_[g][i];
      const std::string where = fmt::format("parameter {} of group {}", i, g);
      if (!p.defined())
        throw DomainError(kind_, where + " is an undefined tensor.");
      // Updating a tensor that an op produced would silently corrupt the tape's history.
      if (!p.is_leaf())
        throw GraphError(kind_, where + " was produced by an op; optimisers update leaves only. "
                                        "Pass the module's parameters().");
      if (!seen.insert(p.id()).second)
        throw DomainError(kind_, where + " appears twice; each parameter may be in one group "
                                         "only, once.");
    }
    total += groups_[g].size();
  }
  if (total == 0)
    throw DomainError(kind_, "the parameter list is empty. Register parameters on the module "
                             "before building the optimiser.");
  state_.resize(groups_.size());
  names_.resize(groups_.size());
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    names_[g].resize(groups_[g].size());
    for (const Tensor& p : groups_[g]) {
      ParamState s;
      for (std::size_t b = 0; b < buffer_names_.size(); ++b)
        s.buffers.push_back(Tensor::zeros(p.shape()));
      state_[g].push_back(std::move(s));
    }
  }
}

Optimizer::~Optimizer() {
  for (Schedule* s : schedules_) s->optimizer_ = nullptr;
}

void Optimizer::set_parameter_names(const NamedTensors& named) {
  std::unordered_map<const void*, const std::string*> by_impl;
  for (const auto& [name, t] : named)
    if (t.defined()) by_impl.emplace(t.id(), &name);  // first name wins, as in Module
  for (std::size_t g = 0; g < groups_.size(); ++g)
    for (std::size_t i = 0; i < groups_[g].size(); ++i) {
      const auto it = by_impl.find(groups_[g][i].id());
      if (it != by_impl.end()) names_[g][i] = *it->second;
    }
}

std::string Optimizer::parameter_name(std::size_t group, std::size_t index) const {
  params(group);  // range check
  if (index >= groups_[group].size())
    throw ShapeError(kind_, fmt::format("group {} has {} parameters, not {}.", group,
                                        groups_[group].size(), index + 1));
  const std::string position = fmt::format("parameter {} of group {}", index, group);
  return names_[group][index].empty() ? position
                                      : fmt::format("'{}' ({})", names_[group][index], position);
}

double Optimizer::lr(std::size_t group) const {
  params(group);  // range check
  return lr_slot(group);
}

void Optimizer::set_lr(std::size_t group, double lr) {
  params(group);
  double& slot = lr_slot(group);
  const double old = slot;
  slot = lr;
  try {
    check_options(group);
  } catch (const DomainError&) {
    slot = old;
    throw;
  }
}

bool Optimizer::refuse_nonfinite(const std::string& message, const std::string& argument,
                                 std::vector<Shape> shapes) {
  switch (nonfinite_) {
    case NonFinite::Allow:
      return true;
    case NonFinite::Skip:
      ++skipped_steps_;
      return false;
    case NonFinite::Throw:
      break;
  }
  throw DomainError(kind_, message, argument, std::move(shapes));
}

bool Optimizer::begin_step() {
  for (std::size_t g = 0; g < groups_.size(); ++g) check_options(g);  // writable between steps
  return admit_gradients();
}

bool Optimizer::admit_gradients() {
  if (nonfinite_ == NonFinite::Allow) return true;
  std::size_t bad_params = 0, first_group = 0, first_index = 0, first_count = 0;
  for (std::size_t g = 0; g < groups_.size(); ++g)
    for (std::size_t i = 0; i < groups_[g].size(); ++i) {
      const Tensor grad = groups_[g][i].grad();
      if (!grad.defined()) continue;
      const std::size_t bad = count_nonfinite(grad.data());
      if (bad == 0) continue;
      if (bad_params++ == 0) first_group = g, first_index = i, first_count = bad;
    }
  if (bad_params == 0) return true;
  const Tensor& p = groups_[first_group][first_index];
  std::size_t nan = 0;
  const Tensor grad = p.grad();
  for (double x : grad.data()) nan += std::isnan(x) ? 1 : 0;
  const std::string others =
      bad_params == 1 ? "" : fmt::format(" ({} more parameters have some too)", bad_params - 1);
  return refuse_nonfinite(
      fmt::format("the gradient of {}, shape {}, has {} non-finite entries of {} ({} NaN, {} "
                  "infinite){}; no parameter and no optimiser state was changed. Find where the "
                  "loss overflows or divides by zero (log(0), a learning rate too large), or "
                  "call set_nonfinite(NonFinite::Skip) to skip such steps.{}",
                  parameter_name(first_group, first_index), format_shape(p.shape()),
                  first_count, p.numel(), nan, first_count - nan, others,
                  names_[first_group][first_index].empty()
                      ? " set_parameter_names(model.named_parameters()) puts module paths here."
                      : ""),
      names_[first_group][first_index], {p.shape()});
}

void Optimizer::zero_grad() {
  for (auto& group : groups_)
    for (Tensor& p : group) p.zero_grad();
}

const std::vector<Tensor>& Optimizer::params(std::size_t group) const {
  if (group >= groups_.size())
    throw ShapeError(kind_, fmt::format("group {} does not exist ({} groups).", group,
                                        groups_.size()));
  return groups_[group];
}

std::vector<Tensor> Optimizer::parameters() const {
  std::vector<Tensor> all;
  for (const auto& group : groups_) all.insert(all.end(), group.begin(), group.end());
  return all;
}

Optimizer::ParamState& Optimizer::state(std::size_t group, std::size_t index) {
  return state_[group][index];
}
const Optimizer::ParamState& Optimizer::state(std::size_t group, std::size_t index) const {
  return state_[group][index];
}

std::string Optimizer::prefix(std::size_t group) const {
  return fmt::format("{}.group{}.", kind_, group);
}

NamedTensors Optimizer::state_dict() const {
  for (std::size_t g = 0; g < groups_.size(); ++g) check_options(g);
  return layout();
}

NamedTensors Optimizer::layout() const {
  NamedTensors out;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    for (auto& [name, value] : hyperparameters(g)) out.emplace_back(prefix(g) + name, value);
    for (std::size_t i = 0; i < groups_[g].size(); ++i) {
      const std::string p = fmt::format("{}param{}.", prefix(g), i);
      const ParamState& s = state_[g][i];
      out.emplace_back(p + "steps", Tensor::scalar(static_cast<double>(s.steps)));
      // Copies: the caller must not alias buffers that later steps overwrite in place.
      for (std::size_t b = 0; b < buffer_names_.size(); ++b)
        out.emplace_back(p + buffer_names_[b], Tensor::from(s.buffers[b].shape(),
                                                            s.buffers[b].to_vector()));
    }
  }
  for (std::size_t i = 0; i < schedules_.size(); ++i)
    for (auto& [name, value] : schedules_[i]->state())
      out.emplace_back(schedule_prefix(i) + name, value);
  for (auto& [name, value] : extra_state()) out.emplace_back(kind_ + "." + name, value);
  return out;
}

std::string Optimizer::schedule_prefix(std::size_t i) const {
  return fmt::format("{}.schedule{}.{}.", kind_, i, schedules_[i]->kind());
}

void Optimizer::check_state_dict(const NamedTensors& state) const {
  std::map<std::string, const Tensor*> given;
  for (const auto& [name, t] : state)
    if (!given.emplace(name, &t).second)
      throw IoError(kind_, fmt::format("optimiser state has entry '{}' twice.", name));
  const NamedTensors expected = layout();
  // extra_state() entries come last; their shapes are the optimiser's to check.
  const std::size_t fixed = expected.size() - extra_state().size();
  for (std::size_t k = 0; k < expected.size(); ++k) {
    const auto& [name, t] = expected[k];
    auto it = given.find(name);
    if (it == given.end())
      throw IoError(kind_, fmt::format("optimiser state lacks entry '{}'. It was saved from a "
                                       "different optimiser or parameter groups.",
                                       name));
    const Tensor& v = *it->second;
    if (!v.defined() || (k < fixed && v.shape() != t.shape()))
      throw IoError(kind_,
                    fmt::format("optimiser state entry '{}' has shape {}, expected {}.", name,
                                v.defined() ? format_shape(v.shape()) : "?",
                                format_shape(t.shape())),
                    "", {t.shape()});
  }
  if (given.size() != expected.size())
    for (const auto& [name, t] : given) {
      bool known = false;
      for (const auto& e : expected) known = known || e.first == name;
      if (!known)
        throw IoError(kind_, fmt::format("optimiser state has unexpected entry '{}'. It was "
                                         "saved from a different optimiser or parameter groups.",
                                         name));
    }

  // The values: what the optimiser would refuse from a user it refuses from a file.
  auto entry = [&](const std::string& name) -> const Tensor& { return *given.at(name); };
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    NamedTensors hyper = hyperparameters(g);
    for (auto& [name, value] : hyper) value = entry(prefix(g) + name);
    try {
      check_hyperparameters(g, hyper);
    } catch (const DomainError& e) {
      throw IoError(kind_, fmt::format("optimiser state entries '{}*' hold options this "
                                       "optimiser refuses ({}). The file is corrupted or was "
                                       "written by a faulty program.",
                                       prefix(g), e.what()));
    }
    for (std::size_t i = 0; i < groups_[g].size(); ++i) {
      const std::string p = fmt::format("{}param{}.", prefix(g), i);
      const double steps = entry(p + "steps").item();
      if (!(steps >= 0) || steps != std::floor(steps) || steps > 0x1p53)
        throw IoError(kind_, fmt::format("optimiser state entry '{}steps' is {}, not a step "
                                         "count.",
                                         p, steps));
      for (std::size_t b = 0; b < buffer_names_.size(); ++b) {
        const auto values = entry(p + buffer_names_[b]).data();
        if (const std::size_t bad = count_nonfinite(values); bad != 0)
          throw IoError(kind_, fmt::format("optimiser state entry '{}{}' has {} NaN or infinite "
                                           "values; resuming from it would poison the "
                                           "parameters.",
                                           p, buffer_names_[b], bad));
        if (buffer_nonnegative(b))
          for (double x : values)
            if (x < 0)
              throw IoError(kind_, fmt::format("optimiser state entry '{}{}' holds {}; it must "
                                               "be >= 0.",
                                               p, buffer_names_[b], x));
      }
    }
  }
  for (std::size_t i = 0; i < schedules_.size(); ++i) {
    NamedTensors values = schedules_[i]->state();
    for (auto& [name, value] : values) value = entry(schedule_prefix(i) + name);
    try {
      schedules_[i]->check_state(values);
    } catch (const DomainError& e) {
      throw IoError(kind_, fmt::format("schedule state entries '{}*' hold values the schedule "
                                       "refuses ({}). The file is corrupted or was written by a "
                                       "faulty program.",
                                       schedule_prefix(i), e.what()));
    }
  }
  NamedTensors extra = extra_state();
  for (auto& [name, value] : extra) value = entry(kind_ + "." + name);
  check_extra_state(extra);
}

void Optimizer::load_state_dict(const NamedTensors& state) {
  check_state_dict(state);
  std::map<std::string, Tensor> given(state.begin(), state.end());
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    NamedTensors hyper = hyperparameters(g);
    for (auto& [name, value] : hyper) value = given.at(prefix(g) + name);
    set_hyperparameters(g, hyper);
    for (std::size_t i = 0; i < groups_[g].size(); ++i) {
      const std::string p = fmt::format("{}param{}.", prefix(g), i);
      ParamState& s = state_[g][i];
      s.steps = static_cast<int64_t>(given.at(p + "steps").item());
      for (std::size_t b = 0; b < buffer_names_.size(); ++b)
        s.buffers[b] = Tensor::from(s.buffers[b].shape(), given.at(p + buffer_names_[b]).to_vector());
    }
  }
  for (std::size_t i = 0; i < schedules_.size(); ++i) {
    NamedTensors values = schedules_[i]->state();
    for (auto& [name, value] : values) value = given.at(schedule_prefix(i) + name);
    schedules_[i]->set_state(values);
  }
  NamedTensors extra = extra_state();
  for (auto& [name, value] : extra) value = given.at(kind_ + "." + name);
  set_extra_state(extra);
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm,
                      const ClipOptions& options) {
  const double p = options.norm_type;
  if (!(max_norm >= 0) || !(p > 0))
    throw DomainError("clip_grad_norm",
                      fmt::format("max_norm = {} must be >= 0 and norm_type = {} must be > 0.",
                                  max_norm, p));
  double acc = 0.0;
  for (const Tensor& t : params) {
    if (!t.defined() || !t.grad().defined()) continue;
    const Tensor grad = t.grad();
    for (double g : grad.data())
      acc = std::isinf(p) ? std::max(acc, std::fabs(g)) : acc + std::pow(std::fabs(g), p);
  }
  const double norm = std::isinf(p) ? acc : std::pow(acc, 1.0 / p);
  if (!std::isfinite(norm))
    throw DomainError("clip_grad_norm",
                      fmt::format("the gradient norm is {}; some gradient is NaN or infinite. "
                                  "Lower the learning rate or check the loss for log(0).",
                                  norm));
  // The small constant keeps a zero norm from dividing by zero (as PyTorch does).
  const double scale = max_norm / (norm + 1e-6);
  if (scale < 1.0) {
    NoGrad guard;
    for (const Tensor& t : params) {
      if (!t.defined() || !t.grad().defined()) continue;
      // Write a fresh gradient rather than scaling in place: the old one may be shared.
      Tensor g = t.grad();
      std::vector<double> v = g.to_vector();
      for (double& x : v) x *= scale;
      Tensor(t).set_grad(Tensor::from(g.shape(), std::move(v)));
    }
  }
  return norm;
}

}  // namespace cholla::optim
