// dmapool native shim: shared state, argument checks and errors.
//
// The shim is thin and policy-free (syscalls and ioctls only), but it is the last line of defence
// between JavaScript and raw memory, so every export validates its arguments itself — types,
// integer ranges, overflow — and throws a JS exception (never crashes) on a bad one. It touches
// only what it made: mappings and file descriptors are kept in per-environment registries and
// every call names them by id; ArrayBuffers it hands out are tracked until their memory goes away.
#pragma once
// A C++ exception that reaches node-addon-api's callback wrapper is rethrown into JS; while the
// environment is shutting down (worker.terminate(), process teardown) that throw fails, and
// without this node-addon-api throws again from its catch handler: std::terminate, an abort of
// the whole process. With it the exception is dropped (JS can no longer run anyway). Every
// translation unit includes this header before napi.h, so all of them see the same definition.
#ifndef NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS
#define NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS
#endif
#include <napi.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace dmapool {

// One ArrayBuffer the shim created over part of a mapping.
struct View {
  uint32_t mapping = 0;
  size_t offset = 0, length = 0;
  // Strong reference: the shim, not the GC, decides when the buffer is detached.
  Napi::Reference<Napi::ArrayBuffer> ref;
  // JS detached our handle (a transfer: stream enqueue / BYOB read, postMessage or
  // structuredClone with a transfer list), so another ArrayBuffer may hold the same memory until
  // the GC collects it; the entry lives until then (the finalizer removes it).
  bool escaped = false;
};

// One mmap the shim made.
struct Mapping {
  uint8_t* addr = nullptr;
  size_t length = 0;
  bool writable = false;
  bool anonymous = false;  // DMA memory (may be IOMMU-mapped); false: a file/BAR mapping
  // Unmapped for the caller, but the range is kept as inert anonymous memory until every
  // escaped ArrayBuffer over it is collected (so they can never see memory reused by others).
  bool held = false;
  std::set<uint32_t> views;
  int dmaMaps = 0;  // live VFIO DMA mappings of this range (unmap refuses while > 0)
};

// (device, inode), plus the /proc/self/fd link for anonymous-inode files (a VFIO device, an
// eventfd and Node's own epoll fd share one inode; their link names differ).
struct FdIdentity {
  uint64_t dev = 0, ino = 0;
  std::string anon;
  bool operator==(const FdIdentity& o) const { return dev == o.dev && ino == o.ino && anon == o.anon; }
};
// The identity of an open descriptor, or false when it is not open.
bool IdentifyFd(int fd, FdIdentity* id);

struct DmaMapRecord {
  uint32_t mapping;
  uint64_t iova, size;
  uint32_t ioas = 0;  // iommufd: the IO address space (0 for a VFIO type1 container)
};

struct State {
  Napi::FunctionReference errorClass;
  std::map<uint32_t, Mapping> mappings;
  std::map<uint32_t, View> views;
  // File descriptors this shim opened and has not closed, with the identity of what each refers
  // to: a number JS closed behind our back (fs.closeSync) and Node reused for something else no
  // longer matches, and is refused instead of acted on.
  std::map<int, FdIdentity> fds;
  std::map<int, std::vector<DmaMapRecord>> dmaMaps;  // per VFIO container fd / iommufd
  uint32_t nextMapping = 1, nextView = 1;
  uint8_t* bounce = nullptr;  // ioctl bounce area, followed by a PROT_NONE guard page
  size_t bounceSize = 0;
  size_t pageSize = 4096;
  size_t hugePageSize = 2 << 20;
  // The longest ArrayBuffer this Node can wrap around external memory (Node < 22: 4 GiB). Node
  // rejects a longer one after it has already run the finalizer, which node-addon-api then frees
  // a second time (an abort), so every buffer the shim makes is checked against this first.
  size_t maxBuffer = size_t(1) << 32;
  // Interrupt handles (native/irq.cc): its registry, shared with its env cleanup hook.
  std::shared_ptr<void> irq;
};

State& GetState(Napi::Env env);
void InitState(Napi::Env env);

// ---- errors -------------------------------------------------------------------------------
// Throws a DmaPoolError (the class handed over by setErrorClass; a plain Error with the same
// fields before that) for errno `err` raised by `syscall`.
[[noreturn]] void ThrowErrno(Napi::Env env, int err, const std::string& syscall, const std::string& path,
                             const std::string& hint, const std::string& message = "");
// EINVAL for a bad argument (no syscall was made).
[[noreturn]] void ThrowArg(Napi::Env env, const std::string& fn, const std::string& what);
// A specific code without an errno from a syscall (EBADF for an unknown fd, EBUSY, …).
[[noreturn]] void ThrowCode(Napi::Env env, int err, const std::string& fn, const std::string& what,
                            const std::string& hint = "");
const char* ErrnoName(int err);

// ---- argument checks (each throws EINVAL naming the function and argument) -----------------
struct Args {
  const Napi::CallbackInfo& info;
  const char* fn;
  Napi::Env env() const { return info.Env(); }
  Napi::Value at(size_t i) const { return i < info.Length() ? info[i] : info.Env().Undefined(); }
  // An integer-valued Number in [min, max] (doubles are exact up to 2^53).
  int64_t Int(size_t i, const char* name, int64_t min, int64_t max) const;
  // A file descriptor this shim opened.
  int Fd(size_t i, const char* name = "fd") const;
  std::string Str(size_t i, const char* name, size_t maxLen) const;
  // Optional trailing string (name/hint): undefined → "".
  std::string OptStr(size_t i, const char* name) const;
  bool OptBool(const Napi::Object& o, const char* key) const;
  Napi::Object Obj(size_t i, const char* name) const;
  // Bytes of a TypedArray or DataView (data may be null when the length is 0).
  void Bytes(size_t i, const char* name, uint8_t** data, size_t* len) const;
  Mapping& Map(size_t i, const char* name = "mapping") const;
};

// ENOMEM once the 32-bit mapping or view ids are exhausted (an id must never be issued twice).
void CheckIds(Napi::Env env, const char* fn, bool view);

// Registers a new mapping and its whole-range ArrayBuffer (when writable). Returns its id.
uint32_t AddMapping(Napi::Env env, uint8_t* addr, size_t len, bool writable, bool anonymous,
                    Napi::ArrayBuffer* whole);
// A new external ArrayBuffer over [offset, offset+length) of mapping `id`, tracked as a view.
Napi::ArrayBuffer MakeView(Napi::Env env, uint32_t id, size_t offset, size_t length, uint32_t* viewId);

// After a successful IOMMU unmap of [iova, iova + size) on container/iommufd `fd` (in IO address
// space `ioas`; 0 for a type1 container): forgets the DMA-map records that lay wholly inside it,
// releasing their mappings for munmap. Both kernels unmap only whole mappings (a range that
// splits one fails), so "wholly inside" is exactly what went; a record it does not cover stays
// and keeps its memory from being unmapped (the safe side).
void ForgetDmaMaps(State& st, int fd, uint32_t ioas, uint64_t iova, uint64_t size);

void InitMemory(Napi::Env env, Napi::Object exports);
void InitFd(Napi::Env env, Napi::Object exports);
void InitIrq(Napi::Env env, Napi::Object exports);
void InitIommufd(Napi::Env env, Napi::Object exports);

}  // namespace dmapool
