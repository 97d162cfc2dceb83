// Anonymous memory for DMA slabs: aligned mmap, optional hugetlb / THP,
// bulk population and mlock, exposed to JS as an external ArrayBuffer.
// Unmapping detaches the ArrayBuffer first so no JS view can outlive the mapping.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "errors.h"
#include "memory.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

namespace dmapool {

static void NoFinalize(Napi::Env, void*) {
  // Mappings are released explicitly (unmap); a collected view must never
  // free memory a device may still be writing to.
}

Napi::ArrayBuffer ExternalBuffer(Napi::Env env, void* addr, size_t len) {
  return Napi::ArrayBuffer::New(env, addr, len, NoFinalize);
}

// Fault in every page of [p, p+len) for writing, in one call when the kernel
// supports MADV_POPULATE_WRITE (5.14+), else by touching one byte per page.
static void Populate(uint8_t* p, size_t len) {
  if (madvise(p, len, MADV_POPULATE_WRITE) == 0) return;
  const size_t pg = (size_t)sysconf(_SC_PAGESIZE);
  for (size_t off = 0; off < len; off += pg) ((volatile uint8_t*)p)[off] = 0;
}

// mapAnonymous(size, align, { hugetlb, thp, populate, lock })
//   lock: 0 = no, 1 = try (report whether it worked), 2 = required (throw)
// -> { buffer, address (BigInt), hugetlb, locked }
Napi::Value MapAnonymous(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const size_t size = (size_t)info[0].As<Napi::Number>().Int64Value();
  size_t align = (size_t)info[1].As<Napi::Number>().Int64Value();
  Napi::Object o = info[2].As<Napi::Object>();
  const bool hugetlb = o.Get("hugetlb").ToBoolean();
  const bool thp = o.Get("thp").ToBoolean();
  const bool populate = o.Get("populate").ToBoolean();
  const int lock = o.Get("lock").ToNumber().Int32Value();
  const size_t pg = (size_t)sysconf(_SC_PAGESIZE);
  if (size == 0 || size % pg != 0)
    throw ErrnoError(env, EINVAL, "mmap", "", "slab size must be a positive multiple of the page size");
  if (align < pg) align = pg;
  if ((align & (align - 1)) != 0)
    throw ErrnoError(env, EINVAL, "mmap", "", "slab alignment must be a power of two");

  uint8_t* p;
  if (hugetlb) {
    // hugetlb mappings are naturally aligned to the huge page size (2 MiB).
    void* m = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | (populate ? MAP_POPULATE : 0), -1, 0);
    if (m == MAP_FAILED)
      throw ErrnoError(env, errno, "mmap", "MAP_HUGETLB",
                       "reserve huge pages: echo N > /proc/sys/vm/nr_hugepages");
    p = (uint8_t*)m;
    if (((uintptr_t)p & (align - 1)) != 0) {
      munmap(p, size);
      throw ErrnoError(env, EINVAL, "mmap", "MAP_HUGETLB",
                       "requested alignment exceeds the huge page size");
    }
  } else {
    // Over-map by `align` and trim both ends to get an aligned region.
    const size_t span = size + align;
    void* m = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) throw ErrnoError(env, errno, "mmap", "", "");
    uintptr_t base = (uintptr_t)m;
    uintptr_t aligned = (base + align - 1) & ~(uintptr_t)(align - 1);
    if (aligned > base) munmap(m, aligned - base);
    uintptr_t end = aligned + size, mend = base + span;
    if (mend > end) munmap((void*)end, mend - end);
    p = (uint8_t*)aligned;
    if (thp) madvise(p, size, MADV_HUGEPAGE);  // advisory; failure is harmless
    // Never let fork() share DMA pages copy-on-write with a child.
    madvise(p, size, MADV_DONTFORK);
  }

  bool locked = false;
  if (lock > 0) {
    if (mlock(p, size) == 0) {
      locked = true;  // mlock also populates
    } else {
      int err = errno;
      if (lock > 1) {
        munmap(p, size);
        throw ErrnoError(env, err, "mlock", "", "");
      }
    }
  }
  if (populate && !locked && !hugetlb) Populate(p, size);

  Napi::Object r = Napi::Object::New(env);
  r.Set("buffer", ExternalBuffer(env, p, size));
  r.Set("address", Napi::BigInt::New(env, (uint64_t)(uintptr_t)p));
  r.Set("hugetlb", Napi::Boolean::New(env, hugetlb));
  r.Set("locked", Napi::Boolean::New(env, locked));
  return r;
}

// unmap(buffer): detach every JS view of the buffer, then munmap it.
// Returns false (and does nothing) when the buffer was already unmapped.
Napi::Value Unmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  if (ab.IsDetached()) return Napi::Boolean::New(env, false);
  void* p = ab.Data();
  size_t len = ab.ByteLength();
  ab.Detach();
  if (p != nullptr && len != 0 && munmap(p, len) != 0)
    throw ErrnoError(env, errno, "munmap", "", "");
  return Napi::Boolean::New(env, true);
}

// addressOf(buffer) -> BigInt CPU address of the buffer's first byte (0 when detached).
Napi::Value AddressOf(const Napi::CallbackInfo& info) {
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  uintptr_t a = ab.IsDetached() ? 0 : (uintptr_t)ab.Data();
  return Napi::BigInt::New(info.Env(), (uint64_t)a);
}

void InitMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("pageSize", Napi::Number::New(env, (double)sysconf(_SC_PAGESIZE)));
  exports.Set("mapAnonymous", Napi::Function::New(env, MapAnonymous, "mapAnonymous"));
  exports.Set("unmap", Napi::Function::New(env, Unmap, "unmap"));
  exports.Set("addressOf", Napi::Function::New(env, AddressOf, "addressOf"));
}

}  // namespace dmapool
