// Checkpoints in data-parallel training. Every rank holds the same parameters and optimiser
// state, so one copy is enough: rank 0 writes it (nn::save: versioned, checksummed, atomic),
// and loading reads it on rank 0 and broadcasts it, so the file only has to exist where rank 0
// runs, and a checkpoint written by N ranks loads into any number of ranks (the file holds no
// rank count). Every rank must call these functions; they return once all ranks are done.
// A failure on rank 0 (a missing, corrupted or mismatched file, a full disk) is rethrown on
// every rank as an IoError carrying rank 0's message, so no rank is left waiting.
#pragma once

#include <string>

#include "nn/module.hpp"
#include "nn/optim/optimizer.hpp"

namespace cholla::distributed {

void save_checkpoint(const nn::Module& module, const std::string& path);
void save_checkpoint(const nn::Module& module, const optim::Optimizer& optimizer, const std::string& path);

void load_checkpoint(nn::Module& module, const std::string& path);
void load_checkpoint(nn::Module& module, optim::Optimizer& optimizer, const std::string& path);

}  // namespace cholla::distributed
