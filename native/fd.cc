// File-descriptor syscalls used by the real providers: open/close, ioctl, pread/pwrite, memfd,
// ftruncate, seals, getrlimit, and the few ioctls whose arguments carry pointers or return new
// descriptors (VFIO DMA map/unmap, VFIO_GROUP_GET_DEVICE_FD, UDMABUF_CREATE; VFIO_DEVICE_SET_IRQS,
// whose payload holds eventfds, is in irq.cc), which get
// dedicated exports so their pointers can only name memory this shim mapped.
//
// Only descriptors the shim opened are accepted (a stale or foreign number — Node's own epoll
// fd, stdout, a number reused after close — is EBADF, never touched). The generic ioctl takes
// only requests whose argument holds no pointer, and passes buffers through a bounce area that
// ends at a PROT_NONE guard page: whatever size the kernel believes the struct has, it cannot
// read or write past the caller's bytes (it gets EFAULT instead).
#include <fcntl.h>
#include <linux/dma-buf.h>
#include <linux/udmabuf.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "shim.h"

namespace dmapool {

static constexpr int64_t kMaxSafe = (int64_t(1) << 53) - 1;
static constexpr size_t kMaxIoctlBytes = 64 * 1024;
// Integer ioctl arguments stay below the lowest mappable address: should a kernel treat one as
// a pointer, it faults (EFAULT) instead of writing into this process.
static constexpr int64_t kMaxIoctlInt = 4095;

enum class Arg { None, Int, Buffer };
struct IoctlRule {
  unsigned long request;
  Arg arg;
  size_t minBytes;  // for Buffer: the fixed part of the struct
  const char* name;
};

// Requests the generic ioctl passes through: none of their arguments contains a user pointer.
static const IoctlRule kIoctls[] = {
    {VFIO_GET_API_VERSION, Arg::None, 0, "VFIO_GET_API_VERSION"},
    {VFIO_CHECK_EXTENSION, Arg::Int, 0, "VFIO_CHECK_EXTENSION"},
    {VFIO_SET_IOMMU, Arg::Int, 0, "VFIO_SET_IOMMU"},
    {VFIO_GROUP_GET_STATUS, Arg::Buffer, sizeof(vfio_group_status), "VFIO_GROUP_GET_STATUS"},
    {VFIO_GROUP_SET_CONTAINER, Arg::Buffer, sizeof(int32_t), "VFIO_GROUP_SET_CONTAINER"},
    {VFIO_GROUP_UNSET_CONTAINER, Arg::None, 0, "VFIO_GROUP_UNSET_CONTAINER"},
    {VFIO_DEVICE_GET_INFO, Arg::Buffer, 16, "VFIO_DEVICE_GET_INFO"},
    {VFIO_DEVICE_GET_REGION_INFO, Arg::Buffer, 32, "VFIO_DEVICE_GET_REGION_INFO"},
    {VFIO_DEVICE_GET_IRQ_INFO, Arg::Buffer, sizeof(vfio_irq_info), "VFIO_DEVICE_GET_IRQ_INFO"},
    {VFIO_DEVICE_RESET, Arg::None, 0, "VFIO_DEVICE_RESET"},
    {VFIO_IOMMU_GET_INFO, Arg::Buffer, 16, "VFIO_IOMMU_GET_INFO"},
    {DMA_BUF_IOCTL_SYNC, Arg::Buffer, sizeof(dma_buf_sync), "DMA_BUF_IOCTL_SYNC"},
};

static int Own(Napi::Env env, int fd) {
  FdIdentity id;
  if (!IdentifyFd(fd, &id)) {
    int err = errno;
    close(fd);
    ThrowErrno(env, err, "fstat", "", "");
  }
  GetState(env).fds[fd] = id;
  return fd;
}

// open(path, flags, [hint]) -> fd. flags: an access mode, optionally O_SYNC / O_NONBLOCK
// (O_CLOEXEC is always added; nothing that creates or truncates files).
static Napi::Value Open(const Napi::CallbackInfo& info) {
  Args a{info, "open"};
  std::string path = a.Str(0, "path", 4096);
  int flags = (int)a.Int(1, "flags", 0, INT32_MAX);
  std::string hint = a.OptStr(2, "hint");
  if ((flags & ~(O_ACCMODE | O_SYNC | O_NONBLOCK | O_CLOEXEC)) != 0 || (flags & O_ACCMODE) == O_ACCMODE)
    ThrowArg(info.Env(), a.fn, "flags must be O_RDONLY, O_WRONLY or O_RDWR, optionally with O_SYNC or O_NONBLOCK");
  int fd = open(path.c_str(), flags | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) ThrowErrno(info.Env(), errno, "open", path, hint);
  return Napi::Number::New(info.Env(), Own(info.Env(), fd));
}

// close(fd): only a descriptor this shim opened (EBADF otherwise: nothing is closed).
static Napi::Value Close(const Napi::CallbackInfo& info) {
  Args a{info, "close"};
  int fd = a.Fd(0);
  State& st = GetState(info.Env());
  st.fds.erase(fd);
  // Forget the container's DMA records but leave the mappings marked busy: the IOMMU mappings
  // live on while a group still holds the container, so that memory is never unmapped (leaked
  // rather than reused under a device that may still reach it).
  st.dmaMaps.erase(fd);
  if (close(fd) != 0 && errno != EINTR) ThrowErrno(info.Env(), errno, "close", "", "");
  return info.Env().Undefined();
}

// ioctl(fd, request, arg: TypedArray | number | undefined, [name], [hint]) -> the ioctl's result
static Napi::Value Ioctl(const Napi::CallbackInfo& info) {
  Args a{info, "ioctl"};
  Napi::Env env = info.Env();
  State& st = GetState(env);
  int fd = a.Fd(0);
  unsigned long req = (unsigned long)a.Int(1, "request", 0, UINT32_MAX);
  const IoctlRule* rule = nullptr;
  for (const IoctlRule& r : kIoctls)
    if (r.request == req) rule = &r;
  if (!rule) ThrowArg(env, a.fn, "request " + std::to_string(req) + " is not one the shim passes through");
  std::string name = a.OptStr(3, "name"), hint = a.OptStr(4, "hint");
  if (name.empty()) name = rule->name;
  int r;
  if (rule->arg == Arg::Buffer) {
    uint8_t* data;
    size_t len;
    a.Bytes(2, "arg", &data, &len);
    if (len < rule->minBytes || len > kMaxIoctlBytes)
      ThrowArg(env, a.fn, std::string(rule->name) + " needs a buffer of " + std::to_string(rule->minBytes) + " to " +
                              std::to_string(kMaxIoctlBytes) + " bytes, got " + std::to_string(len));
    uint8_t* b = st.bounce + st.bounceSize - len;  // ends exactly at the guard page
    memcpy(b, data, len);
    r = ioctl(fd, req, b);
    int err = errno;
    memcpy(data, b, len);  // the struct is ours again (also on failure: argsz updates)
    errno = err;
  } else if (rule->arg == Arg::Int) {
    r = ioctl(fd, req, (unsigned long)a.Int(2, "arg", 0, kMaxIoctlInt));
  } else {
    if (!a.at(2).IsUndefined() && !(a.at(2).IsNumber() && a.at(2).As<Napi::Number>().DoubleValue() == 0))
      ThrowArg(env, a.fn, std::string(rule->name) + " takes no argument");
    r = ioctl(fd, req, 0UL);
  }
  if (r < 0) ThrowErrno(env, errno, "ioctl", name, hint);
  return Napi::Number::New(env, r);
}

static Napi::Value PreadPwrite(const Napi::CallbackInfo& info, bool write) {
  Args a{info, write ? "pwrite" : "pread"};
  int fd = a.Fd(0);
  uint8_t* data;
  size_t len;
  a.Bytes(1, "buffer", &data, &len);
  int64_t off = a.Int(2, "offset", 0, kMaxSafe);
  std::string name = a.OptStr(3, "name"), hint = a.OptStr(4, "hint");
  ssize_t n = write ? pwrite(fd, data, len, (off_t)off) : pread(fd, data, len, (off_t)off);
  if (n < 0) ThrowErrno(info.Env(), errno, a.fn, name, hint);
  return Napi::Number::New(info.Env(), (double)n);
}
static Napi::Value Pread(const Napi::CallbackInfo& info) { return PreadPwrite(info, false); }
static Napi::Value Pwrite(const Napi::CallbackInfo& info) { return PreadPwrite(info, true); }

// memfdCreate(name, flags, [hint]) -> fd. flags: MFD_ALLOW_SEALING, MFD_HUGETLB (MFD_CLOEXEC added).
static Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  Args a{info, "memfdCreate"};
  std::string name = a.Str(0, "name", 249);
  unsigned flags = (unsigned)a.Int(1, "flags", 0, INT32_MAX);
  std::string hint = a.OptStr(2, "hint");
  if ((flags & ~(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB)) != 0)
    ThrowArg(info.Env(), a.fn, "flags may only combine MFD_CLOEXEC, MFD_ALLOW_SEALING and MFD_HUGETLB");
  int fd = (int)syscall(SYS_memfd_create, name.c_str(), flags | MFD_CLOEXEC);
  if (fd < 0) ThrowErrno(info.Env(), errno, "memfd_create", name, hint);
  return Napi::Number::New(info.Env(), Own(info.Env(), fd));
}

static Napi::Value Ftruncate(const Napi::CallbackInfo& info) {
  Args a{info, "ftruncate"};
  int fd = a.Fd(0);
  int64_t size = a.Int(1, "size", 0, int64_t(1) << 46);
  if (ftruncate(fd, (off_t)size) != 0) ThrowErrno(info.Env(), errno, "ftruncate", "", "");
  return info.Env().Undefined();
}

// addSeals(fd, seals) / getSeals(fd): F_ADD_SEALS / F_GET_SEALS on a memfd.
static Napi::Value AddSeals(const Napi::CallbackInfo& info) {
  Args a{info, "addSeals"};
  int fd = a.Fd(0);
  int seals = (int)a.Int(1, "seals", 0, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
  if (fcntl(fd, F_ADD_SEALS, seals) != 0) ThrowErrno(info.Env(), errno, "fcntl", "F_ADD_SEALS", "");
  return info.Env().Undefined();
}

static Napi::Value GetSeals(const Napi::CallbackInfo& info) {
  Args a{info, "getSeals"};
  int r = fcntl(a.Fd(0), F_GET_SEALS);
  if (r < 0) ThrowErrno(info.Env(), errno, "fcntl", "F_GET_SEALS", "");
  return Napi::Number::New(info.Env(), r);
}

// getrlimitMemlock() -> { soft, hard } in bytes (Infinity = unlimited)
static Napi::Value GetrlimitMemlock(const Napi::CallbackInfo& info) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0) ThrowErrno(info.Env(), errno, "getrlimit", "RLIMIT_MEMLOCK", "");
  auto conv = [](rlim_t v) { return v == RLIM_INFINITY ? INFINITY : (double)v; };
  Napi::Object r = Napi::Object::New(info.Env());
  r.Set("soft", conv(rl.rlim_cur));
  r.Set("hard", conv(rl.rlim_max));
  return r;
}

// vfioGroupGetDeviceFd(groupFd, bdf, [hint]) -> device fd
static Napi::Value VfioGroupGetDeviceFd(const Napi::CallbackInfo& info) {
  Args a{info, "vfioGroupGetDeviceFd"};
  int fd = a.Fd(0, "groupFd");
  std::string bdf = a.Str(1, "bdf", 64);
  std::string hint = a.OptStr(2, "hint");
  int r = ioctl(fd, VFIO_GROUP_GET_DEVICE_FD, bdf.c_str());
  if (r < 0) ThrowErrno(info.Env(), errno, "ioctl", "VFIO_GROUP_GET_DEVICE_FD " + bdf, hint);
  return Napi::Number::New(info.Env(), Own(info.Env(), r));
}

// udmabufCreate(devFd, memfd, offset, size, [hint]) -> dma-buf fd (close-on-exec)
static Napi::Value UdmabufCreate(const Napi::CallbackInfo& info) {
  Args a{info, "udmabufCreate"};
  int dev = a.Fd(0, "devFd");
  int memfd = a.Fd(1, "memfd");
  udmabuf_create c{};
  c.memfd = (uint32_t)memfd;
  c.flags = UDMABUF_FLAGS_CLOEXEC;
  c.offset = (uint64_t)a.Int(2, "offset", 0, kMaxSafe);
  c.size = (uint64_t)a.Int(3, "size", 1, kMaxSafe);
  std::string hint = a.OptStr(4, "hint");
  int r = ioctl(dev, UDMABUF_CREATE, &c);
  if (r < 0) ThrowErrno(info.Env(), errno, "ioctl", "UDMABUF_CREATE", hint);
  return Napi::Number::New(info.Env(), Own(info.Env(), r));
}

// vfioMapDma(containerFd, mapping, offset, size, iova, [hint]): maps part of an anonymous mapping
// made by this shim (never arbitrary process memory) for device read and write at `iova`.
static Napi::Value VfioMapDma(const Napi::CallbackInfo& info) {
  Args a{info, "vfioMapDma"};
  Napi::Env env = info.Env();
  State& st = GetState(env);
  int fd = a.Fd(0, "containerFd");
  Mapping& m = a.Map(1);
  uint32_t id = info[1].As<Napi::Number>().Uint32Value();
  uint64_t off = (uint64_t)a.Int(2, "offset", 0, kMaxSafe);
  uint64_t size = (uint64_t)a.Int(3, "size", 1, kMaxSafe);
  uint64_t iova = (uint64_t)a.Int(4, "iova", 0, kMaxSafe);
  std::string hint = a.OptStr(5, "hint");
  if (!m.anonymous || !m.writable) ThrowArg(env, a.fn, "only anonymous DMA memory can be mapped for the device");
  if (off > m.length || size > m.length - off) ThrowArg(env, a.fn, "the range is outside the mapping");
  if (off % st.pageSize || size % st.pageSize || iova % st.pageSize || iova > (uint64_t)kMaxSafe - size)
    ThrowArg(env, a.fn, "offset, size and iova must be page-aligned and iova + size < 2^53");
  vfio_iommu_type1_dma_map map{};
  map.argsz = sizeof map;
  map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
  map.vaddr = (uint64_t)(uintptr_t)(m.addr + off);
  map.iova = iova;
  map.size = size;
  if (ioctl(fd, VFIO_IOMMU_MAP_DMA, &map) != 0) ThrowErrno(env, errno, "ioctl", "VFIO_IOMMU_MAP_DMA", hint);
  st.dmaMaps[fd].push_back({id, iova, size});
  m.dmaMaps++;
  return env.Undefined();
}

// vfioUnmapDma(containerFd, iova, size) -> bytes unmapped
static Napi::Value VfioUnmapDma(const Napi::CallbackInfo& info) {
  Args a{info, "vfioUnmapDma"};
  Napi::Env env = info.Env();
  State& st = GetState(env);
  int fd = a.Fd(0, "containerFd");
  uint64_t iova = (uint64_t)a.Int(1, "iova", 0, kMaxSafe);
  uint64_t size = (uint64_t)a.Int(2, "size", 1, kMaxSafe);
  vfio_iommu_type1_dma_unmap un{};
  un.argsz = sizeof un;
  un.iova = iova;
  un.size = size;
  if (ioctl(fd, VFIO_IOMMU_UNMAP_DMA, &un) != 0) ThrowErrno(env, errno, "ioctl", "VFIO_IOMMU_UNMAP_DMA", "");
  ForgetDmaMaps(st, fd, 0, iova, size);
  return Napi::Number::New(env, (double)un.size);
}

void InitFd(Napi::Env env, Napi::Object exports) {
  State& st = GetState(env);
  // the ioctl bounce area: 64 KiB followed by an inaccessible guard page
  size_t total = kMaxIoctlBytes + st.pageSize;
  void* m = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) ThrowErrno(env, errno, "mmap", "ioctl bounce area", "");
  if (mprotect((uint8_t*)m + kMaxIoctlBytes, st.pageSize, PROT_NONE) != 0) ThrowErrno(env, errno, "mprotect", "", "");
  st.bounce = (uint8_t*)m;
  st.bounceSize = kMaxIoctlBytes;

  exports.Set("open", Napi::Function::New(env, Open, "open"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("ioctl", Napi::Function::New(env, Ioctl, "ioctl"));
  exports.Set("pread", Napi::Function::New(env, Pread, "pread"));
  exports.Set("pwrite", Napi::Function::New(env, Pwrite, "pwrite"));
  exports.Set("memfdCreate", Napi::Function::New(env, MemfdCreate, "memfdCreate"));
  exports.Set("ftruncate", Napi::Function::New(env, Ftruncate, "ftruncate"));
  exports.Set("addSeals", Napi::Function::New(env, AddSeals, "addSeals"));
  exports.Set("getSeals", Napi::Function::New(env, GetSeals, "getSeals"));
  exports.Set("getrlimitMemlock", Napi::Function::New(env, GetrlimitMemlock, "getrlimitMemlock"));
  exports.Set("vfioGroupGetDeviceFd", Napi::Function::New(env, VfioGroupGetDeviceFd, "vfioGroupGetDeviceFd"));
  exports.Set("udmabufCreate", Napi::Function::New(env, UdmabufCreate, "udmabufCreate"));
  exports.Set("vfioMapDma", Napi::Function::New(env, VfioMapDma, "vfioMapDma"));
  exports.Set("vfioUnmapDma", Napi::Function::New(env, VfioUnmapDma, "vfioUnmapDma"));
  Napi::Object c = Napi::Object::New(env);
#define C(x) c.Set(#x, Napi::Number::New(env, (double)(x)));
  C(O_RDONLY) C(O_WRONLY) C(O_RDWR) C(O_SYNC) C(O_NONBLOCK)
  C(PROT_READ) C(PROT_WRITE) C(MAP_SHARED) C(MAP_PRIVATE) C(MAP_POPULATE)
  C(MFD_CLOEXEC) C(MFD_ALLOW_SEALING) C(MFD_HUGETLB)
  C(F_SEAL_SHRINK) C(F_SEAL_GROW) C(F_SEAL_SEAL) C(F_SEAL_WRITE)
#undef C
  exports.Set("constants", c);
}

}  // namespace dmapool
