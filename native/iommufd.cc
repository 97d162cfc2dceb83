// iommufd and the VFIO device cdev (Linux >= 6.6): /dev/iommu IO address spaces (IOAS) and the
// VFIO device ioctls that bind a device to an iommufd and attach it to an IOAS.
//
// The build host's uapi headers may predate iommufd (Debian bookworm ships 6.1: no
// linux/iommufd.h, no VFIO cdev ioctls), so the structs and request numbers are defined here,
// checked by static_assert against the sizes and offsets of Linux 6.12's
// include/uapi/linux/iommufd.h and include/uapi/linux/vfio.h. The kernel's structs are
// extensible (a leading size/argsz): these fixed layouts are the ones 6.6+ accepts.
//
// Every export here takes a descriptor the shim opened AND checks what it refers to before any
// ioctl: an iommufd must be /dev/iommu (a character device whose sysfs node is the misc device
// "iommu"), a device fd a VFIO device cdev (its sysfs node lives under a vfio-dev directory), so
// these request numbers never reach another driver's ioctl handler. IOMMU_IOAS_MAP takes only an
// anonymous DMA mapping the shim made (never arbitrary process memory), records it (unmap of that
// memory is EBUSY while the IOMMU maps it, as for VFIO type1) and maps it at the fixed IOVA
// TypeScript allocated. VFIO_DEVICE_BIND_IOMMUFD carries an fd inside its struct, so it is checked
// here too. All integers are range-checked before use and every range sum is overflow-safe.
#include <fcntl.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "shim.h"

namespace dmapool {
namespace {

constexpr int64_t kMaxSafe = (int64_t(1) << 53) - 1;

// ---- uapi (Linux 6.12 include/uapi/linux/iommufd.h) ----
constexpr unsigned kIommufdType = ';';
constexpr unsigned long IoNr(unsigned type, unsigned nr) { return (unsigned long)((type << 8) | nr); }  // _IO(type, nr)
constexpr unsigned long kIommuIoasAlloc = IoNr(kIommufdType, 0x81);
constexpr unsigned long kIommuIoasIovaRanges = IoNr(kIommufdType, 0x84);
constexpr unsigned long kIommuIoasMap = IoNr(kIommufdType, 0x85);
constexpr unsigned long kIommuIoasUnmap = IoNr(kIommufdType, 0x86);
constexpr unsigned long kIommuOption = IoNr(kIommufdType, 0x87);
constexpr uint32_t kMapFixedIova = 1u << 0, kMapWriteable = 1u << 1, kMapReadable = 1u << 2;
constexpr uint16_t kOptionOpGet = 1;

struct IoasAlloc { uint32_t size, flags, out_ioas_id; };
struct IovaRange { uint64_t start, last; };
struct IoasIovaRanges { uint32_t size, ioas_id, num_iovas, reserved; uint64_t allowed_iovas, out_iova_alignment; };
struct IoasMap { uint32_t size, flags, ioas_id, reserved; uint64_t user_va, length, iova; };
struct IoasUnmap { uint32_t size, ioas_id; uint64_t iova, length; };
struct Option { uint32_t size, option_id; uint16_t op, reserved; uint32_t object_id; uint64_t val64; };

static_assert(sizeof(IoasAlloc) == 12 && offsetof(IoasAlloc, out_ioas_id) == 8, "iommu_ioas_alloc");
static_assert(sizeof(IovaRange) == 16 && offsetof(IovaRange, last) == 8, "iommu_iova_range");
static_assert(sizeof(IoasIovaRanges) == 32 && offsetof(IoasIovaRanges, num_iovas) == 8 &&
              offsetof(IoasIovaRanges, allowed_iovas) == 16 && offsetof(IoasIovaRanges, out_iova_alignment) == 24,
              "iommu_ioas_iova_ranges");
static_assert(sizeof(IoasMap) == 40 && offsetof(IoasMap, ioas_id) == 8 && offsetof(IoasMap, user_va) == 16 &&
              offsetof(IoasMap, length) == 24 && offsetof(IoasMap, iova) == 32, "iommu_ioas_map");
static_assert(sizeof(IoasUnmap) == 24 && offsetof(IoasUnmap, iova) == 8 && offsetof(IoasUnmap, length) == 16,
              "iommu_ioas_unmap");
static_assert(sizeof(Option) == 24 && offsetof(Option, op) == 8 && offsetof(Option, object_id) == 12 &&
              offsetof(Option, val64) == 16, "iommu_option");

// ---- uapi (Linux 6.12 include/uapi/linux/vfio.h) ----
constexpr unsigned kVfioType = ';', kVfioBase = 100;  // VFIO_TYPE, VFIO_BASE
constexpr unsigned long kVfioDeviceBindIommufd = IoNr(kVfioType, kVfioBase + 18);
constexpr unsigned long kVfioDeviceAttachPt = IoNr(kVfioType, kVfioBase + 19);
constexpr unsigned long kVfioDeviceDetachPt = IoNr(kVfioType, kVfioBase + 20);
struct BindIommufd { uint32_t argsz, flags; int32_t iommufd; uint32_t out_devid; };
struct AttachPt { uint32_t argsz, flags, pt_id; };
static_assert(sizeof(BindIommufd) == 16 && offsetof(BindIommufd, iommufd) == 8 && offsetof(BindIommufd, out_devid) == 12,
              "vfio_device_bind_iommufd");
static_assert(sizeof(AttachPt) == 12 && offsetof(AttachPt, pt_id) == 8, "vfio_device_attach_iommufd_pt");
static_assert(kVfioType == VFIO_TYPE && kVfioBase == VFIO_BASE, "the host's linux/vfio.h agrees");
static_assert(kVfioDeviceBindIommufd == 0x3b76 && kIommuIoasMap == 0x3b85, "_IO(';', nr) encoding");

// The sysfs node of a character device fd ("" if it is not one).
std::string CharDevNode(int fd) {
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISCHR(sb.st_mode)) return "";
  char path[64], link[512];
  snprintf(path, sizeof path, "/sys/dev/char/%u:%u", major(sb.st_rdev), minor(sb.st_rdev));
  ssize_t n = readlink(path, link, sizeof link - 1);
  if (n <= 0) return "";
  return std::string(link, (size_t)n);
}

bool EndsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// A shim-opened /dev/iommu descriptor (EBADF otherwise).
int IommuFd(const Args& a, size_t i, const char* name = "iommufd") {
  int fd = a.Fd(i, name);
  if (!EndsWith(CharDevNode(fd), "/misc/iommu"))
    ThrowCode(a.env(), EBADF, a.fn, std::string(name) + " " + std::to_string(fd) + " is not a /dev/iommu descriptor");
  return fd;
}

// A shim-opened VFIO device cdev (/dev/vfio/devices/vfioN; EBADF otherwise).
int VfioCdevFd(const Args& a, size_t i, const char* name = "deviceFd") {
  int fd = a.Fd(i, name);
  std::string node = CharDevNode(fd);
  size_t slash = node.rfind('/');
  if (slash == std::string::npos || slash < 9 || node.compare(slash - 9, 9, "/vfio-dev") != 0 ||
      node.compare(slash + 1, 4, "vfio") != 0)
    ThrowCode(a.env(), EBADF, a.fn, std::string(name) + " " + std::to_string(fd) + " is not a VFIO device cdev (/dev/vfio/devices/vfioN)");
  return fd;
}

uint32_t ObjId(const Args& a, size_t i, const char* name) { return (uint32_t)a.Int(i, name, 1, UINT32_MAX); }

// iommufdIoasAlloc(iommufd) -> ioasId
Napi::Value IoasAllocFn(const Napi::CallbackInfo& info) {
  Args a{info, "iommufdIoasAlloc"};
  int fd = IommuFd(a, 0);
  IoasAlloc c{};
  c.size = sizeof c;
  if (ioctl(fd, kIommuIoasAlloc, &c) != 0) ThrowErrno(info.Env(), errno, "ioctl", "IOMMU_IOAS_ALLOC", "");
  return Napi::Number::New(info.Env(), c.out_ioas_id);
}

// iommufdIovaRanges(iommufd, ioasId) -> { ranges: [{ start, last }] (bigint), alignment (bigint) }.
// The kernel reports how many ranges there are (EMSGSIZE + num_iovas when the array is too
// small): the call retries with that many, a bounded number of times.
Napi::Value IovaRangesFn(const Napi::CallbackInfo& info) {
  Args a{info, "iommufdIovaRanges"};
  Napi::Env env = info.Env();
  uint32_t ioas = ObjId(a, 1, "ioasId");
  int fd = IommuFd(a, 0);
  std::vector<IovaRange> ranges(4);
  IoasIovaRanges c{};
  for (int tries = 0;; tries++) {
    c = IoasIovaRanges{};
    c.size = sizeof c;
    c.ioas_id = ioas;
    c.num_iovas = (uint32_t)ranges.size();
    c.allowed_iovas = (uint64_t)(uintptr_t)ranges.data();
    if (ioctl(fd, kIommuIoasIovaRanges, &c) == 0) break;
    int err = errno;
    if (err != EMSGSIZE || tries >= 4 || c.num_iovas <= ranges.size() || c.num_iovas > 65536)
      ThrowErrno(env, err, "ioctl", "IOMMU_IOAS_IOVA_RANGES", "");
    ranges.resize(c.num_iovas);
  }
  if (c.num_iovas > ranges.size()) ThrowCode(env, EOVERFLOW, a.fn, "the kernel reported more ranges than it wrote");
  Napi::Array arr = Napi::Array::New(env, c.num_iovas);
  for (uint32_t i = 0; i < c.num_iovas; i++) {
    Napi::Object r = Napi::Object::New(env);
    r.Set("start", Napi::BigInt::New(env, ranges[i].start));
    r.Set("last", Napi::BigInt::New(env, ranges[i].last));
    arr.Set(i, r);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("ranges", arr);
  out.Set("alignment", Napi::BigInt::New(env, c.out_iova_alignment));
  return out;
}

// iommufdMapDma(iommufd, ioasId, mapping, offset, size, iova, [hint]): IOMMU_IOAS_MAP of part of
// an anonymous mapping made by this shim at exactly `iova`, readable and writeable by devices.
Napi::Value MapDmaFn(const Napi::CallbackInfo& info) {
  Args a{info, "iommufdMapDma"};
  Napi::Env env = info.Env();
  State& st = GetState(env);
  // plain arguments first (EINVAL / EBADF for the mapping), then what the descriptor is
  uint32_t ioas = ObjId(a, 1, "ioasId");
  Mapping& m = a.Map(2);
  uint32_t id = info[2].As<Napi::Number>().Uint32Value();
  uint64_t off = (uint64_t)a.Int(3, "offset", 0, kMaxSafe);
  uint64_t size = (uint64_t)a.Int(4, "size", 1, kMaxSafe);
  uint64_t iova = (uint64_t)a.Int(5, "iova", 0, kMaxSafe);
  std::string hint = a.OptStr(6, "hint");
  if (!m.anonymous || !m.writable || m.held) ThrowArg(env, a.fn, "only anonymous DMA memory can be mapped for the device");
  if (off > m.length || size > m.length - off) ThrowArg(env, a.fn, "the range is outside the mapping");
  if (off % st.pageSize || size % st.pageSize || iova % st.pageSize || iova > (uint64_t)kMaxSafe - size)
    ThrowArg(env, a.fn, "offset, size and iova must be page-aligned and iova + size < 2^53");
  int fd = IommuFd(a, 0);
  IoasMap c{};
  c.size = sizeof c;
  c.flags = kMapFixedIova | kMapReadable | kMapWriteable;
  c.ioas_id = ioas;
  c.user_va = (uint64_t)(uintptr_t)(m.addr + off);
  c.length = size;
  c.iova = iova;
  if (ioctl(fd, kIommuIoasMap, &c) != 0) ThrowErrno(env, errno, "ioctl", "IOMMU_IOAS_MAP", hint);
  st.dmaMaps[fd].push_back({id, iova, size, ioas});
  m.dmaMaps++;
  return env.Undefined();
}

// iommufdUnmapDma(iommufd, ioasId, iova, size) -> bytes unmapped. iommufd unmaps only whole
// areas inside the range; the records of exactly those are dropped (ForgetDmaMaps).
Napi::Value UnmapDmaFn(const Napi::CallbackInfo& info) {
  Args a{info, "iommufdUnmapDma"};
  Napi::Env env = info.Env();
  State& st = GetState(env);
  uint32_t ioas = ObjId(a, 1, "ioasId");
  uint64_t iova = (uint64_t)a.Int(2, "iova", 0, kMaxSafe);
  uint64_t size = (uint64_t)a.Int(3, "size", 1, kMaxSafe);
  if (iova > (uint64_t)kMaxSafe - size) ThrowArg(env, a.fn, "iova + size must be below 2^53");
  int fd = IommuFd(a, 0);
  IoasUnmap c{};
  c.size = sizeof c;
  c.ioas_id = ioas;
  c.iova = iova;
  c.length = size;
  if (ioctl(fd, kIommuIoasUnmap, &c) != 0) ThrowErrno(env, errno, "ioctl", "IOMMU_IOAS_UNMAP", "");
  ForgetDmaMaps(st, fd, ioas, iova, size);
  return Napi::Number::New(env, (double)c.length);
}

// iommufdGetOption(iommufd, optionId, objectId) -> val64 (IOMMU_OPTION_OP_GET; 0 = global)
Napi::Value GetOptionFn(const Napi::CallbackInfo& info) {
  Args a{info, "iommufdGetOption"};
  Option c{};
  c.size = sizeof c;
  c.option_id = (uint32_t)a.Int(1, "optionId", 0, 1);
  c.op = kOptionOpGet;
  c.object_id = (uint32_t)a.Int(2, "objectId", 0, UINT32_MAX);
  int fd = IommuFd(a, 0);
  if (ioctl(fd, kIommuOption, &c) != 0) ThrowErrno(info.Env(), errno, "ioctl", "IOMMU_OPTION", "");
  return Napi::Number::New(info.Env(), (double)c.val64);
}

// vfioDeviceBindIommufd(deviceFd, iommufd, [hint]) -> devid. Both descriptors are the shim's
// own, checked to be a VFIO device cdev and /dev/iommu.
Napi::Value BindFn(const Napi::CallbackInfo& info) {
  Args a{info, "vfioDeviceBindIommufd"};
  std::string hint = a.OptStr(2, "hint");
  a.Fd(0, "deviceFd");
  a.Fd(1, "iommufd");
  int dev = VfioCdevFd(a, 0);
  int iommufd = IommuFd(a, 1);
  BindIommufd c{};
  c.argsz = sizeof c;
  c.iommufd = iommufd;
  if (ioctl(dev, kVfioDeviceBindIommufd, &c) != 0) ThrowErrno(info.Env(), errno, "ioctl", "VFIO_DEVICE_BIND_IOMMUFD", hint);
  return Napi::Number::New(info.Env(), c.out_devid);
}

// vfioDeviceAttachPt(deviceFd, ptId, [hint]) / vfioDeviceDetachPt(deviceFd)
Napi::Value AttachFn(const Napi::CallbackInfo& info) {
  Args a{info, "vfioDeviceAttachPt"};
  AttachPt c{};
  c.argsz = sizeof c;
  c.pt_id = ObjId(a, 1, "ptId");
  std::string hint = a.OptStr(2, "hint");
  int dev = VfioCdevFd(a, 0);
  if (ioctl(dev, kVfioDeviceAttachPt, &c) != 0) ThrowErrno(info.Env(), errno, "ioctl", "VFIO_DEVICE_ATTACH_IOMMUFD_PT", hint);
  return Napi::Number::New(info.Env(), c.pt_id);
}

Napi::Value DetachFn(const Napi::CallbackInfo& info) {
  Args a{info, "vfioDeviceDetachPt"};
  int dev = VfioCdevFd(a, 0);
  struct { uint32_t argsz, flags; } c{8, 0};  // struct vfio_device_detach_iommufd_pt
  if (ioctl(dev, kVfioDeviceDetachPt, &c) != 0) ThrowErrno(info.Env(), errno, "ioctl", "VFIO_DEVICE_DETACH_IOMMUFD_PT", "");
  return info.Env().Undefined();
}

}  // namespace

void InitIommufd(Napi::Env env, Napi::Object exports) {
  exports.Set("iommufdIoasAlloc", Napi::Function::New(env, IoasAllocFn, "iommufdIoasAlloc"));
  exports.Set("iommufdIovaRanges", Napi::Function::New(env, IovaRangesFn, "iommufdIovaRanges"));
  exports.Set("iommufdMapDma", Napi::Function::New(env, MapDmaFn, "iommufdMapDma"));
  exports.Set("iommufdUnmapDma", Napi::Function::New(env, UnmapDmaFn, "iommufdUnmapDma"));
  exports.Set("iommufdGetOption", Napi::Function::New(env, GetOptionFn, "iommufdGetOption"));
  exports.Set("vfioDeviceBindIommufd", Napi::Function::New(env, BindFn, "vfioDeviceBindIommufd"));
  exports.Set("vfioDeviceAttachPt", Napi::Function::New(env, AttachFn, "vfioDeviceAttachPt"));
  exports.Set("vfioDeviceDetachPt", Napi::Function::New(env, DetachFn, "vfioDeviceDetachPt"));
}

}  // namespace dmapool
