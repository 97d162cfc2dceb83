// Device interrupts delivered into the event loop.
//
// An interrupt handle owns one descriptor the kernel makes readable when the device interrupts:
// an eventfd the shim creates (VFIO signals it: VFIO_DEVICE_SET_IRQS with DATA_EVENTFD), or a
// /dev/uioN descriptor adopted from the shim's registry (uio: read gives the 32-bit event count,
// writing 1 re-enables the interrupt). Both are non-blocking. Waiting costs no thread: a uv_poll
// handle on the descriptor is started only while JS waits (an active handle keeps the loop alive
// exactly that long), its callback reads the count without blocking and hands it to JS.
//
// The descriptors never enter the generic fd registry: JS names a handle by id, VFIO_DEVICE_SET_IRQS
// is a dedicated call that takes those ids (never raw fd numbers, which could name Node's own
// eventfds or anything else in the process) and only a VFIO device descriptor the shim opened.
// Teardown: irqClose stops the poll, closes the descriptor and frees the handle once libuv has
// let go of it; at environment teardown (worker.terminate(), process exit) an async cleanup hook
// does the same for every handle still open and holds the environment until libuv is done.
#include <fcntl.h>
#include <linux/vfio.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "shim.h"

namespace dmapool {

namespace {

constexpr uint32_t kMaxVectors = 2048;  // MSI-X table size limit (PCI spec)

struct IrqEnv;

struct IrqHandle {
  uv_poll_t poll;  // first member: the close callback casts back
  uint32_t id = 0;
  int fd = -1;
  bool uio = false;
  uint32_t uioLast = 0;  // uio: the cumulative count last seen
  bool polling = false;
  napi_env env = nullptr;
  Napi::FunctionReference cb;
  std::unique_ptr<Napi::AsyncContext> ctx;
  std::shared_ptr<IrqEnv> owner;  // keeps the registry alive until libuv has closed the handle
};

struct IrqEnv {
  std::map<uint32_t, IrqHandle*> handles;
  uint32_t next = 1;
  size_t closing = 0;  // handles whose uv_close callback has not run yet
  bool tearingDown = false;
  napi_async_cleanup_hook_handle hook = nullptr;
};

struct Holder {
  std::shared_ptr<IrqEnv> irq;
};

// The per-env registry lives in the shim's State (shared with the cleanup hook).
std::shared_ptr<IrqEnv>& Registry(Napi::Env env) {
  return *static_cast<std::shared_ptr<IrqEnv>*>(GetState(env).irq.get());
}

void OnClosed(uv_handle_t* h) {
  IrqHandle* ih = reinterpret_cast<IrqHandle*>(h);
  std::shared_ptr<IrqEnv> owner = std::move(ih->owner);
  delete ih;
  if (owner->closing > 0) owner->closing--;
  if (owner->tearingDown && owner->closing == 0 && owner->hook) {
    napi_async_cleanup_hook_handle hook = owner->hook;
    owner->hook = nullptr;
    napi_remove_async_cleanup_hook(hook);
  }
}

// Stops and closes: the descriptor now (no longer polled once uv_poll_stop returned), the
// handle's memory when libuv calls back.
void Release(IrqEnv& reg, IrqHandle* h) {
  reg.handles.erase(h->id);
  uv_poll_stop(&h->poll);
  h->polling = false;
  close(h->fd);
  h->fd = -1;
  // the callback and its async context go with the handle (OnClosed): this may run inside that
  // very callback
  reg.closing++;
  uv_close(reinterpret_cast<uv_handle_t*>(&h->poll), OnClosed);
}

// Reads what is pending without blocking: > 0 interrupts, 0 none, < 0 -errno.
int64_t Drain(IrqHandle* h) {
  if (h->uio) {
    int32_t v = 0;
    ssize_t n = read(h->fd, &v, sizeof v);
    if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -errno;
    if (n != sizeof v) return -EIO;
    uint32_t delta = (uint32_t)v - h->uioLast;
    h->uioLast = (uint32_t)v;
    // a read returns only when the count changed; a full 2^32 wrap still is at least one
    return delta ? (int64_t)delta : (int64_t)1;
  }
  uint64_t v = 0;
  ssize_t n = read(h->fd, &v, sizeof v);
  if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -errno;
  if (n != sizeof v) return -EIO;
  return v > (uint64_t(1) << 53) ? (int64_t(1) << 53) : (int64_t)v;
}

// Calls the handle's JS callback from the loop. Raw N-API (no C++ exceptions): while the
// environment is stopping (worker.terminate(), exit) the loop may still run this before the
// cleanup hook closed the handle, and JS cannot be called any more — the delivery is dropped.
// The library's callback never throws (lib/irq.ts reports its own errors).
void Deliver(IrqHandle* h, int64_t count) {
  napi_env env = h->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value fn, recv, argv[2], result;
  bool ok = napi_get_reference_value(env, h->cb, &fn) == napi_ok && fn != nullptr &&
            napi_get_global(env, &recv) == napi_ok &&
            napi_create_double(env, count >= 0 ? (double)count : 0, &argv[0]) == napi_ok;
  if (ok) {
    if (count >= 0)
      ok = napi_get_undefined(env, &argv[1]) == napi_ok;
    else
      ok = napi_create_string_utf8(env, ErrnoName((int)-count), NAPI_AUTO_LENGTH, &argv[1]) == napi_ok;
  }
  if (ok && napi_make_callback(env, *h->ctx, recv, fn, 2, argv, &result) != napi_ok) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);  // JS can no longer run: drop it
  }
  napi_close_handle_scope(env, scope);
}

void OnReadable(uv_poll_t* p, int status, int events) {
  IrqHandle* h = reinterpret_cast<IrqHandle*>(p);
  if (!h->polling || h->fd < 0 || !h->owner || h->owner->tearingDown) return;
  int64_t count = status < 0 ? -(int64_t)(-status) : Drain(h);
  if (count == 0) return;  // spurious or already consumed by poll(): keep waiting
  // one delivery per arm: JS re-arms while it still has waiters
  uv_poll_stop(&h->poll);
  h->polling = false;
  Deliver(h, count);  // may close or re-arm h: nothing of h is used after this
}

void Teardown(napi_async_cleanup_hook_handle hook, void* arg) {
  auto* holder = static_cast<Holder*>(arg);
  std::shared_ptr<IrqEnv> reg = holder->irq;
  delete holder;
  reg->tearingDown = true;
  reg->hook = hook;
  while (!reg->handles.empty()) Release(*reg, reg->handles.begin()->second);
  if (reg->closing == 0) {
    reg->hook = nullptr;
    napi_remove_async_cleanup_hook(hook);
  }
}

IrqHandle* Lookup(const Args& a, size_t i) {
  uint32_t id = (uint32_t)a.Int(i, "irq", 1, UINT32_MAX);
  auto& reg = Registry(a.env());
  auto it = reg->handles.find(id);
  if (it == reg->handles.end()) ThrowCode(a.env(), EBADF, a.fn, "interrupt handle " + std::to_string(id) + " is not open");
  return it->second;
}

Napi::Function Callback(const Args& a, size_t i) {
  Napi::Value v = a.at(i);
  if (!v.IsFunction()) ThrowArg(a.env(), a.fn, "callback must be a function");
  return v.As<Napi::Function>();
}

uint32_t Register(Napi::Env env, int fd, bool uio, uint32_t uioLast, Napi::Function cb) {
  auto& reg = Registry(env);
  if (reg->next == UINT32_MAX) {
    close(fd);
    ThrowCode(env, ENOMEM, "irq", "out of interrupt handle ids");
  }
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) {
    close(fd);
    ThrowCode(env, EINVAL, "irq", "no event loop");
  }
  auto* h = new IrqHandle();
  int r = uv_poll_init(loop, &h->poll, fd);
  if (r != 0) {
    delete h;
    close(fd);
    ThrowErrno(env, -r, "uv_poll_init", "", "");
  }
  h->id = reg->next++;
  h->fd = fd;
  h->uio = uio;
  h->uioLast = uioLast;
  h->env = env;
  h->cb = Napi::Persistent(cb);
  h->ctx = std::make_unique<Napi::AsyncContext>(env, "dmapool:irq");
  h->owner = reg;
  reg->handles[h->id] = h;
  return h->id;
}

// irqCreate(callback) -> id: a new eventfd (non-blocking, close-on-exec) for VFIO to signal.
// callback(count, errorCode) runs once per irqArm when interrupts arrived (or the wait failed).
Napi::Value IrqCreate(const Napi::CallbackInfo& info) {
  Args a{info, "irqCreate"};
  Napi::Function cb = Callback(a, 0);
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) ThrowErrno(info.Env(), errno, "eventfd", "", "");
  return Napi::Number::New(info.Env(), Register(info.Env(), fd, false, 0, cb));
}

// irqAdoptUio(fd, eventCount, callback) -> id: takes a /dev/uioN descriptor the shim opened out
// of the fd registry (it is the handle's from now on; close() no longer accepts it) and makes it
// non-blocking. eventCount: the device's count before it was opened (sysfs uioN/event).
Napi::Value IrqAdoptUio(const Napi::CallbackInfo& info) {
  Args a{info, "irqAdoptUio"};
  Napi::Env env = info.Env();
  int fd = a.Fd(0);
  uint32_t last = (uint32_t)a.Int(1, "eventCount", 0, UINT32_MAX);
  Napi::Function cb = Callback(a, 2);
  struct stat sb;
  char path[64], link[256];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, link, sizeof link - 1);
  if (n < 0) n = 0;
  link[n] = 0;
  const char* base = strrchr(link, '/');
  base = base ? base + 1 : link;
  bool named = strncmp(base, "uio", 3) == 0 && base[3] >= '0' && base[3] <= '9';
  for (const char* c = base + 3; named && *c; c++) named = *c >= '0' && *c <= '9';
  if (fstat(fd, &sb) != 0 || !S_ISCHR(sb.st_mode) || !named)
    ThrowArg(env, a.fn, "fd " + std::to_string(fd) + " is not a UIO device (/dev/uioN)");
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) ThrowErrno(env, errno, "fcntl", "F_SETFL O_NONBLOCK", "");
  GetState(env).fds.erase(fd);
  return Napi::Number::New(env, Register(env, fd, true, last, cb));
}

// irqArm(id): start waiting (the loop stays alive while armed); the callback runs once.
Napi::Value IrqArm(const Napi::CallbackInfo& info) {
  Args a{info, "irqArm"};
  IrqHandle* h = Lookup(a, 0);
  if (!h->polling) {
    int r = uv_poll_start(&h->poll, UV_READABLE, OnReadable);
    if (r != 0) ThrowErrno(info.Env(), -r, "uv_poll_start", "", "");
    h->polling = true;
  }
  return info.Env().Undefined();
}

// irqDisarm(id): stop waiting (the handle no longer keeps the loop alive).
Napi::Value IrqDisarm(const Napi::CallbackInfo& info) {
  Args a{info, "irqDisarm"};
  IrqHandle* h = Lookup(a, 0);
  if (h->polling) uv_poll_stop(&h->poll);
  h->polling = false;
  return info.Env().Undefined();
}

// irqRead(id) -> interrupts since the last read (0 when none; never blocks).
Napi::Value IrqRead(const Napi::CallbackInfo& info) {
  Args a{info, "irqRead"};
  IrqHandle* h = Lookup(a, 0);
  int64_t n = Drain(h);
  if (n < 0) ThrowErrno(info.Env(), (int)-n, "read", h->uio ? "uio" : "eventfd", "");
  return Napi::Number::New(info.Env(), (double)n);
}

// irqSignal(id, n): adds n to an eventfd handle's counter (software-raised: tests, wake-ups).
Napi::Value IrqSignal(const Napi::CallbackInfo& info) {
  Args a{info, "irqSignal"};
  IrqHandle* h = Lookup(a, 0);
  uint64_t v = (uint64_t)a.Int(1, "count", 1, (int64_t(1) << 53) - 1);
  if (h->uio) ThrowArg(info.Env(), a.fn, "a UIO handle is raised by its device only");
  if (write(h->fd, &v, sizeof v) != (ssize_t)sizeof v) ThrowErrno(info.Env(), errno, "write", "eventfd", "");
  return info.Env().Undefined();
}

// irqUioControl(id, enable): writes 1 (re-enable the interrupt) or 0 (disable) to /dev/uioN.
Napi::Value IrqUioControl(const Napi::CallbackInfo& info) {
  Args a{info, "irqUioControl"};
  IrqHandle* h = Lookup(a, 0);
  if (!a.at(1).IsBoolean()) ThrowArg(info.Env(), a.fn, "enable must be a boolean");
  if (!h->uio) ThrowArg(info.Env(), a.fn, "not a UIO handle");
  int32_t v = a.at(1).As<Napi::Boolean>().Value() ? 1 : 0;
  if (write(h->fd, &v, sizeof v) != (ssize_t)sizeof v)
    ThrowErrno(info.Env(), errno, "write", "uio", "the UIO driver has no irqcontrol (uio_pci_generic needs INTx masking support)");
  return info.Env().Undefined();
}

// irqClose(id): stops waiting and closes the descriptor (EBADF when not open).
Napi::Value IrqClose(const Napi::CallbackInfo& info) {
  Args a{info, "irqClose"};
  IrqHandle* h = Lookup(a, 0);
  Release(*Registry(info.Env()), h);
  return info.Env().Undefined();
}

// irqOpen() -> number of open handles (for leak checks in tests).
Napi::Value IrqCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), (double)Registry(info.Env())->handles.size());
}

bool IsVfioDevice(int fd) {
  char path[64], link[256];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, link, sizeof link - 1);
  if (n <= 0) return false;
  link[n] = 0;
  // a group's device fd is an anonymous inode; the iommufd-era character device lives in
  // /dev/vfio/devices/
  return strcmp(link, "anon_inode:[vfio-device]") == 0 || strncmp(link, "/dev/vfio/devices/vfio", 22) == 0;
}

// vfioSetIrqs(deviceFd, index, action, start, count, irqs?) — VFIO_DEVICE_SET_IRQS.
//  action: VFIO_IRQ_SET_ACTION_MASK | _UNMASK | _TRIGGER (exactly one).
//  irqs undefined: DATA_NONE over [start, start+count) (TRIGGER with count 0 disables the index).
//  irqs an array (TRIGGER only): DATA_EVENTFD, one entry per vector from start: an eventfd handle
//  id of this shim, or -1 to detach that vector. count must equal irqs.length.
Napi::Value VfioSetIrqs(const Napi::CallbackInfo& info) {
  Args a{info, "vfioSetIrqs"};
  Napi::Env env = info.Env();
  int fd = a.Fd(0, "deviceFd");
  uint32_t index = (uint32_t)a.Int(1, "index", 0, VFIO_PCI_NUM_IRQS - 1);
  uint32_t action = (uint32_t)a.Int(2, "action", 0, UINT32_MAX);
  uint32_t start = (uint32_t)a.Int(3, "start", 0, kMaxVectors - 1);
  uint32_t count = (uint32_t)a.Int(4, "count", 0, kMaxVectors);
  if (action != VFIO_IRQ_SET_ACTION_MASK && action != VFIO_IRQ_SET_ACTION_UNMASK && action != VFIO_IRQ_SET_ACTION_TRIGGER)
    ThrowArg(env, a.fn, "action must be one of VFIO_IRQ_SET_ACTION_MASK, _UNMASK, _TRIGGER");
  if (start + count > kMaxVectors) ThrowArg(env, a.fn, "start + count exceeds 2048 vectors");
  std::vector<int32_t> fds;
  Napi::Value v = a.at(5);
  bool eventfds = !v.IsUndefined();
  if (eventfds) {
    if (!v.IsArray()) ThrowArg(env, a.fn, "irqs must be an array of interrupt handle ids (or -1) or undefined");
    if (action != VFIO_IRQ_SET_ACTION_TRIGGER) ThrowArg(env, a.fn, "eventfds can only be set for TRIGGER");
    Napi::Array arr = v.As<Napi::Array>();
    if (arr.Length() != count) ThrowArg(env, a.fn, "count must equal irqs.length");
    auto& reg = Registry(env);
    for (uint32_t i = 0; i < count; i++) {
      Napi::Value e = arr.Get(i);
      if (!e.IsNumber()) ThrowArg(env, a.fn, "irqs[" + std::to_string(i) + "] must be a number");
      double d = e.As<Napi::Number>().DoubleValue();
      if (d == -1) {
        fds.push_back(-1);
        continue;
      }
      if (!(d >= 1 && d <= UINT32_MAX) || d != (double)(uint32_t)d)
        ThrowArg(env, a.fn, "irqs[" + std::to_string(i) + "] must be an interrupt handle id or -1");
      auto it = reg->handles.find((uint32_t)d);
      if (it == reg->handles.end())
        ThrowCode(env, EBADF, a.fn, "irqs[" + std::to_string(i) + "]: interrupt handle " + std::to_string((uint32_t)d) + " is not open");
      if (it->second->uio) ThrowArg(env, a.fn, "irqs[" + std::to_string(i) + "] is a UIO handle, not an eventfd");
      fds.push_back(it->second->fd);
    }
  } else if (action != VFIO_IRQ_SET_ACTION_TRIGGER && count == 0) {
    ThrowArg(env, a.fn, "MASK and UNMASK need count >= 1");
  }
  if (!IsVfioDevice(fd)) ThrowArg(env, a.fn, "deviceFd " + std::to_string(fd) + " is not a VFIO device");
  size_t bytes = sizeof(vfio_irq_set) + fds.size() * sizeof(int32_t);
  std::vector<uint8_t> buf(bytes);
  auto* s = reinterpret_cast<vfio_irq_set*>(buf.data());
  s->argsz = (uint32_t)bytes;
  s->flags = action | (eventfds ? VFIO_IRQ_SET_DATA_EVENTFD : VFIO_IRQ_SET_DATA_NONE);
  s->index = index;
  s->start = start;
  s->count = count;
  if (!fds.empty()) memcpy(s->data, fds.data(), fds.size() * sizeof(int32_t));
  if (ioctl(fd, VFIO_DEVICE_SET_IRQS, s) != 0) {
    static const char* names[] = {"INTX", "MSI", "MSIX", "ERR", "REQ"};
    ThrowErrno(env, errno, "ioctl", std::string("VFIO_DEVICE_SET_IRQS ") + (index < 5 ? names[index] : "?"), "");
  }
  return env.Undefined();
}

}  // namespace

void InitIrq(Napi::Env env, Napi::Object exports) {
  auto reg = std::make_shared<IrqEnv>();
  GetState(env).irq = std::make_shared<std::shared_ptr<IrqEnv>>(reg);
  auto* holder = new Holder{reg};
  napi_async_cleanup_hook_handle hook = nullptr;
  if (napi_add_async_cleanup_hook(env, Teardown, holder, &hook) != napi_ok) {
    delete holder;
    ThrowCode(env, EINVAL, "init", "cannot register the interrupt cleanup hook");
  }
  exports.Set("irqCreate", Napi::Function::New(env, IrqCreate, "irqCreate"));
  exports.Set("irqAdoptUio", Napi::Function::New(env, IrqAdoptUio, "irqAdoptUio"));
  exports.Set("irqArm", Napi::Function::New(env, IrqArm, "irqArm"));
  exports.Set("irqDisarm", Napi::Function::New(env, IrqDisarm, "irqDisarm"));
  exports.Set("irqRead", Napi::Function::New(env, IrqRead, "irqRead"));
  exports.Set("irqSignal", Napi::Function::New(env, IrqSignal, "irqSignal"));
  exports.Set("irqUioControl", Napi::Function::New(env, IrqUioControl, "irqUioControl"));
  exports.Set("irqClose", Napi::Function::New(env, IrqClose, "irqClose"));
  exports.Set("irqCount", Napi::Function::New(env, IrqCount, "irqCount"));
  exports.Set("vfioSetIrqs", Napi::Function::New(env, VfioSetIrqs, "vfioSetIrqs"));
  Napi::Object c = Napi::Object::New(env);
#define C(x) c.Set(#x, Napi::Number::New(env, (double)(x)));
  C(VFIO_PCI_INTX_IRQ_INDEX) C(VFIO_PCI_MSI_IRQ_INDEX) C(VFIO_PCI_MSIX_IRQ_INDEX)
  C(VFIO_IRQ_SET_ACTION_MASK) C(VFIO_IRQ_SET_ACTION_UNMASK) C(VFIO_IRQ_SET_ACTION_TRIGGER)
  C(VFIO_IRQ_INFO_EVENTFD) C(VFIO_IRQ_INFO_MASKABLE) C(VFIO_IRQ_INFO_AUTOMASKED) C(VFIO_IRQ_INFO_NORESIZE)
#undef C
  exports.Set("irqConstants", c);
}

}  // namespace dmapool
