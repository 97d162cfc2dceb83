// Error helpers: every failing syscall becomes a JS Error carrying
// code (errno name), errno, syscall, path (when one is involved) and hint.
#pragma once
#include <napi.h>
#include <string>

namespace dmapool {

// Throws a JS Error for `err` (an errno value) raised by `syscall`.
// `path` names the file or ioctl involved (may be empty); `hint` is a one-line fix.
// Under NAPI_CPP_EXCEPTIONS the throw unwinds C++ too; callers just return.
Napi::Error ErrnoError(Napi::Env env, int err, const std::string& syscall,
                       const std::string& path, const std::string& hint);

// The symbolic name of an errno value ("EPERM"), or "E<n>" when unknown.
const char* ErrnoName(int err);

// A default hint for common failures of a syscall; empty when none applies.
std::string DefaultHint(int err, const std::string& syscall);

}  // namespace dmapool
