// File-descriptor level syscalls used by every real provider: open/close, ioctl with a byte
// buffer or an integer argument, pread/pwrite, mmap of a file, memfd, ftruncate, fcntl,
// readlink, getrlimit, and volatile MMIO accessors. Struct layouts are built in TypeScript.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cerrno>
#include <cstdint>
#include <string>

#include "errors.h"
#include "memory.h"

namespace dmapool {

static std::string OptString(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && info[i].IsString() ? info[i].As<Napi::String>().Utf8Value() : std::string();
}

static int64_t Int(const Napi::Value& v) { return v.As<Napi::Number>().Int64Value(); }

// open(path, flags, [hint]) -> fd
static Napi::Value Open(const Napi::CallbackInfo& info) {
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int flags = (int)Int(info[1]) | O_CLOEXEC;
  int fd = open(path.c_str(), flags);
  if (fd < 0) throw ErrnoError(info.Env(), errno, "open", path, OptString(info, 2));
  return Napi::Number::New(info.Env(), fd);
}

static Napi::Value Close(const Napi::CallbackInfo& info) {
  int fd = (int)Int(info[0]);
  if (fd >= 0 && close(fd) != 0 && errno != EINTR) throw ErrnoError(info.Env(), errno, "close", "", "");
  return info.Env().Undefined();
}

// ioctl(fd, request, arg: Uint8Array | number, name, [hint]) -> return value
static Napi::Value Ioctl(const Napi::CallbackInfo& info) {
  int fd = (int)Int(info[0]);
  unsigned long req = (unsigned long)Int(info[1]);
  std::string name = OptString(info, 3);
  int r;
  if (info[2].IsTypedArray()) {
    Napi::Uint8Array a = info[2].As<Napi::Uint8Array>();
    r = ioctl(fd, req, a.Data());
  } else {
    r = ioctl(fd, req, (unsigned long)Int(info[2]));
  }
  if (r < 0) throw ErrnoError(info.Env(), errno, "ioctl", name, OptString(info, 4));
  return Napi::Number::New(info.Env(), r);
}

// pread(fd, Uint8Array, offset, [name]) -> bytes read
static Napi::Value Pread(const Napi::CallbackInfo& info) {
  int fd = (int)Int(info[0]);
  Napi::Uint8Array a = info[1].As<Napi::Uint8Array>();
  ssize_t n = pread(fd, a.Data(), a.ByteLength(), (off_t)Int(info[2]));
  if (n < 0) throw ErrnoError(info.Env(), errno, "pread", OptString(info, 3), OptString(info, 4));
  return Napi::Number::New(info.Env(), (double)n);
}

static Napi::Value Pwrite(const Napi::CallbackInfo& info) {
  int fd = (int)Int(info[0]);
  Napi::Uint8Array a = info[1].As<Napi::Uint8Array>();
  ssize_t n = pwrite(fd, a.Data(), a.ByteLength(), (off_t)Int(info[2]));
  if (n < 0) throw ErrnoError(info.Env(), errno, "pwrite", OptString(info, 3), OptString(info, 4));
  return Napi::Number::New(info.Env(), (double)n);
}

// mmapFd(fd, size, offset, prot, flags, [name]) -> { buffer, address }
static Napi::Value MmapFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = (int)Int(info[0]);
  size_t size = (size_t)Int(info[1]);
  off_t off = (off_t)Int(info[2]);
  int prot = (int)Int(info[3]);
  int flags = (int)Int(info[4]);
  void* p = mmap(nullptr, size, prot, flags, fd, off);
  if (p == MAP_FAILED) throw ErrnoError(env, errno, "mmap", OptString(info, 5), OptString(info, 6));
  Napi::Object r = Napi::Object::New(env);
  r.Set("buffer", ExternalBuffer(env, p, size));
  r.Set("address", Napi::BigInt::New(env, (uint64_t)(uintptr_t)p));
  return r;
}

static Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  std::string name = info[0].As<Napi::String>().Utf8Value();
  int fd = (int)syscall(SYS_memfd_create, name.c_str(), (unsigned)Int(info[1]));
  if (fd < 0) throw ErrnoError(info.Env(), errno, "memfd_create", name, OptString(info, 2));
  return Napi::Number::New(info.Env(), fd);
}

static Napi::Value Ftruncate(const Napi::CallbackInfo& info) {
  if (ftruncate((int)Int(info[0]), (off_t)Int(info[1])) != 0)
    throw ErrnoError(info.Env(), errno, "ftruncate", "", "");
  return info.Env().Undefined();
}

static Napi::Value Fcntl(const Napi::CallbackInfo& info) {
  int r = fcntl((int)Int(info[0]), (int)Int(info[1]), (long)Int(info[2]));
  if (r < 0) throw ErrnoError(info.Env(), errno, "fcntl", OptString(info, 3), "");
  return Napi::Number::New(info.Env(), r);
}

// getrlimitMemlock() -> { soft, hard } in bytes (Infinity = unlimited)
static Napi::Value GetrlimitMemlock(const Napi::CallbackInfo& info) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0) throw ErrnoError(info.Env(), errno, "getrlimit", "RLIMIT_MEMLOCK", "");
  auto conv = [](rlim_t v) { return v == RLIM_INFINITY ? INFINITY : (double)v; };
  Napi::Object r = Napi::Object::New(info.Env());
  r.Set("soft", Napi::Number::New(info.Env(), conv(rl.rlim_cur)));
  r.Set("hard", Napi::Number::New(info.Env(), conv(rl.rlim_max)));
  return r;
}

// MMIO: volatile loads/stores of 8/16/32/64 bits at buffer[offset] with a full fence, so
// device registers see exactly one access of the right width in program order.
static volatile uint8_t* MmioPtr(const Napi::CallbackInfo& info, size_t width) {
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  size_t off = (size_t)Int(info[1]);
  if (ab.IsDetached() || off % width != 0 || off + width > ab.ByteLength())
    throw ErrnoError(info.Env(), EINVAL, "mmio", "", "register offset out of range, misaligned, or BAR unmapped");
  return (volatile uint8_t*)ab.Data() + off;
}

static Napi::Value MmioRead(const Napi::CallbackInfo& info) {
  size_t w = (size_t)Int(info[2]);
  volatile uint8_t* p = MmioPtr(info, w);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  uint64_t v;
  switch (w) {
    case 1: v = *(volatile uint8_t*)p; break;
    case 2: v = *(volatile uint16_t*)p; break;
    case 4: v = *(volatile uint32_t*)p; break;
    case 8: v = *(volatile uint64_t*)p; break;
    default: throw ErrnoError(info.Env(), EINVAL, "mmio", "", "width must be 1, 2, 4 or 8");
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return Napi::BigInt::New(info.Env(), v);
}

static Napi::Value MmioWrite(const Napi::CallbackInfo& info) {
  size_t w = (size_t)Int(info[3]);
  volatile uint8_t* p = MmioPtr(info, w);
  bool lossless;
  uint64_t v = info[2].As<Napi::BigInt>().Uint64Value(&lossless);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  switch (w) {
    case 1: *(volatile uint8_t*)p = (uint8_t)v; break;
    case 2: *(volatile uint16_t*)p = (uint16_t)v; break;
    case 4: *(volatile uint32_t*)p = (uint32_t)v; break;
    case 8: *(volatile uint64_t*)p = v; break;
    default: throw ErrnoError(info.Env(), EINVAL, "mmio", "", "width must be 1, 2, 4 or 8");
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return info.Env().Undefined();
}

void InitFd(Napi::Env env, Napi::Object exports) {
  exports.Set("open", Napi::Function::New(env, Open, "open"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("ioctl", Napi::Function::New(env, Ioctl, "ioctl"));
  exports.Set("pread", Napi::Function::New(env, Pread, "pread"));
  exports.Set("pwrite", Napi::Function::New(env, Pwrite, "pwrite"));
  exports.Set("mmapFd", Napi::Function::New(env, MmapFd, "mmapFd"));
  exports.Set("memfdCreate", Napi::Function::New(env, MemfdCreate, "memfdCreate"));
  exports.Set("ftruncate", Napi::Function::New(env, Ftruncate, "ftruncate"));
  exports.Set("fcntl", Napi::Function::New(env, Fcntl, "fcntl"));
  exports.Set("getrlimitMemlock", Napi::Function::New(env, GetrlimitMemlock, "getrlimitMemlock"));
  exports.Set("mmioRead", Napi::Function::New(env, MmioRead, "mmioRead"));
  exports.Set("mmioWrite", Napi::Function::New(env, MmioWrite, "mmioWrite"));
  Napi::Object c = Napi::Object::New(env);
#define C(x) c.Set(#x, Napi::Number::New(env, (double)(x)));
  C(O_RDONLY) C(O_WRONLY) C(O_RDWR) C(O_SYNC)
  C(PROT_READ) C(PROT_WRITE) C(MAP_SHARED) C(MAP_PRIVATE) C(MAP_POPULATE) C(MAP_HUGETLB)
  C(MFD_CLOEXEC) C(MFD_ALLOW_SEALING) C(MFD_HUGETLB)
  C(F_ADD_SEALS) C(F_GET_SEALS) C(F_SEAL_SHRINK) C(F_SEAL_GROW) C(F_SEAL_SEAL)
#undef C
  exports.Set("constants", c);
}

}  // namespace dmapool
