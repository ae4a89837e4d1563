// nn::save / nn::load: parameters (and optionally optimiser state) in a versioned binary file.
//
// Format, all integers and doubles little-endian:
//   "CHOLLACK"             8-byte magic
//   u32 version            kCheckpointVersion
//   u32 reserved           0
//   u64 file size          in bytes, checksum included (detects truncation before parsing)
//   u64 entry count
//   entries: u32 name length, name bytes, u32 rank, i64 dims[rank], f64 values[numel]
//   u64 checksum           FNV-1a 64 of every byte before it
// Entry names are "module.<dotted parameter name>" and "optimizer.<state name>".
//
// save writes "<path>.tmp" (under an exclusive lock, so concurrent saves of one path take
// turns), fsyncs it, renames it over `path` and fsyncs the directory: a crash at any point
// leaves either the old file or the new one, never a mix, plus at most that one temporary file,
// which the next save of `path` reuses.
// load refuses anything but a regular file (a directory, /dev/zero) and a header that does not
// announce the file's real size before reading the rest, then validates the whole file (magic,
// version, size, checksum, names and shapes against the module and optimiser) before touching
// anything, so a bad file raises IoError saying what is wrong and leaves the module and
// optimiser exactly as they were.
#pragma once

#include <cstdint>
#include <string>

#include "nn/module.hpp"
#include "nn/optim/optimizer.hpp"

namespace cholla::nn {

inline constexpr uint32_t kCheckpointVersion = 1;

void save(const Module& module, const std::string& path);
void save(const Module& module, const optim::Optimizer& optimizer, const std::string& path);

// The file must hold exactly the module's parameters (names and shapes); extra optimiser state
// in it is ignored by the first overload. The second also needs matching optimiser state.
void load(Module& module, const std::string& path);
void load(Module& module, optim::Optimizer& optimizer, const std::string& path);

}  // namespace cholla::nn
