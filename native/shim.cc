// Per-environment state, errors and argument checks shared by every export.
#include "shim.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace dmapool {

namespace {
struct Holder {
  std::shared_ptr<State> state;
};

size_t ReadHugePageSize() {
  std::ifstream f("/proc/meminfo");
  std::string line;
  while (std::getline(f, line)) {
    unsigned long kb = 0;
    if (sscanf(line.c_str(), "Hugepagesize: %lu kB", &kb) == 1 && kb > 0) return (size_t)kb * 1024;
  }
  return 2 << 20;
}
}  // namespace

std::shared_ptr<State> SharedState(Napi::Env env) { return env.GetInstanceData<Holder>()->state; }

State& GetState(Napi::Env env) { return *env.GetInstanceData<Holder>()->state; }

void InitState(Napi::Env env) {
  auto h = new Holder{std::make_shared<State>()};
  h->state->pageSize = (size_t)sysconf(_SC_PAGESIZE);
  h->state->hugePageSize = ReadHugePageSize();
  // Node 22 raised the Buffer limit from 2^32 to 2^53 - 1 bytes (mappings stop at 2^46 anyway).
  const napi_node_version* ver = nullptr;
  if (sizeof(void*) == 4)
    h->state->maxBuffer = (size_t(1) << 30) - 1;
  else if (napi_get_node_version(env, &ver) == napi_ok && ver && ver->major >= 22)
    h->state->maxBuffer = size_t(1) << 46;
  env.SetInstanceData<Holder>(h);
}

const char* ErrnoName(int err) {
  switch (err) {
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(EBADF) E(ECHILD)
    E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(EXDEV) E(ENODEV)
    E(ENOTDIR) E(EISDIR) E(EINVAL) E(ENFILE) E(EMFILE) E(ENOTTY) E(ETXTBSY) E(EFBIG)
    E(ENOSPC) E(ESPIPE) E(EROFS) E(EMLINK) E(EPIPE) E(ERANGE) E(EDEADLK) E(ENAMETOOLONG)
    E(ENOSYS) E(ELOOP) E(EOPNOTSUPP) E(EOVERFLOW) E(ETIMEDOUT) E(EPROTO) E(EDQUOT)
    E(EALREADY) E(EMSGSIZE)
#undef E
    default: {
      static thread_local char buf[16];
      snprintf(buf, sizeof buf, "E%d", err);
      return buf;
    }
  }
}

static std::string DefaultHint(int err, const std::string& syscall) {
  if (err == ENOMEM && (syscall == "mlock" || syscall == "mmap"))
    return "raise RLIMIT_MEMLOCK (ulimit -l unlimited, or LimitMEMLOCK= in the systemd unit) "
           "or reduce the slab size";
  if (err == EPERM || err == EACCES)
    return "run as root or give this user access to the device node (udev rule / chown)";
  if (err == ENOENT) return "the kernel interface is missing: load the module or check the path";
  if (err == ENOTTY) return "the file does not implement this ioctl (wrong device node or old kernel)";
  return "";
}

[[noreturn]] static void Throw(Napi::Env env, const char* code, int err, const std::string& syscall,
                  const std::string& path, const std::string& hint, const std::string& message) {
  Napi::Object details = Napi::Object::New(env);
  if (!hint.empty()) details.Set("hint", hint);
  if (err) details.Set("errno", err);
  if (!syscall.empty()) details.Set("syscall", syscall);
  if (!path.empty()) details.Set("path", path);
  State& st = GetState(env);
  if (!st.errorClass.IsEmpty()) {
    Napi::Object e;
    try {
      e = st.errorClass.New({Napi::String::New(env, code), Napi::String::New(env, message), details});
    } catch (const Napi::Error&) {
      // not a constructor, or it threw: report our error, not the class's (plain Error below)
    }
    if (!e.IsEmpty()) throw Napi::Error(env, e);
  }
  // Before lib/native.ts handed over DmaPoolError (or when it cannot be constructed): a plain
  // Error with the same fields.
  Napi::Error e = Napi::Error::New(env, std::string(code) + ": " + message);
  e.Set("code", code);
  for (const char* k : {"hint", "errno", "syscall", "path"})
    if (details.Has(k)) e.Set(k, details.Get(k));
  throw e;
}

void ThrowErrno(Napi::Env env, int err, const std::string& syscall, const std::string& path,
                const std::string& hint, const std::string& message) {
  std::string h = hint.empty() ? DefaultHint(err, syscall) : hint;
  std::string msg = message;
  if (msg.empty()) {
    msg = syscall;
    if (!path.empty()) msg += " " + path;
    msg += " failed: ";
    msg += strerror(err);
  }
  Throw(env, ErrnoName(err), err, syscall, path, h, msg);
}

void ThrowArg(Napi::Env env, const std::string& fn, const std::string& what) {
  Throw(env, "EINVAL", 0, "", "", "", fn + ": " + what);
}

void ThrowCode(Napi::Env env, int err, const std::string& fn, const std::string& what, const std::string& hint) {
  Throw(env, ErrnoName(err), 0, "", "", hint, fn + ": " + what);
}

bool IdentifyFd(int fd, FdIdentity* id) {
  struct stat sb;
  if (fstat(fd, &sb) != 0) return false;
  id->dev = (uint64_t)sb.st_dev;
  id->ino = (uint64_t)sb.st_ino;
  id->anon.clear();
  if ((sb.st_mode & S_IFMT) == 0) {  // anonymous inode: tell them apart by their link name
    char path[64], link[256];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n > 0) id->anon.assign(link, (size_t)n);
  }
  return true;
}

// ---- argument checks ------------------------------------------------------------------------

int64_t Args::Int(size_t i, const char* name, int64_t min, int64_t max) const {
  Napi::Value v = at(i);
  if (!v.IsNumber()) ThrowArg(env(), fn, std::string(name) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::trunc(d) != d || d < (double)min || d > (double)max)
    ThrowArg(env(), fn, std::string(name) + " must be an integer in [" + std::to_string(min) + ", " +
                            std::to_string(max) + "]");
  return (int64_t)d;
}

int Args::Fd(size_t i, const char* name) const {
  int fd = (int)Int(i, name, 0, INT32_MAX);
  auto& fds = GetState(env()).fds;
  auto it = fds.find(fd);
  if (it == fds.end())
    ThrowCode(env(), EBADF, fn, std::string(name) + " " + std::to_string(fd) + " is not a descriptor this addon opened");
  FdIdentity now;
  if (!IdentifyFd(fd, &now) || !(now == it->second)) {
    fds.erase(it);  // closed behind our back (and perhaps reused): forget it, touch nothing
    ThrowCode(env(), EBADF, fn, std::string(name) + " " + std::to_string(fd) + " was closed outside this addon");
  }
  return fd;
}

std::string Args::Str(size_t i, const char* name, size_t maxLen) const {
  Napi::Value v = at(i);
  if (!v.IsString()) ThrowArg(env(), fn, std::string(name) + " must be a string");
  // measure first: a huge string is refused without copying it
  size_t n = 0;
  if (napi_get_value_string_utf8(env(), v, nullptr, 0, &n) != napi_ok || n > maxLen)
    ThrowArg(env(), fn, std::string(name) + " is longer than " + std::to_string(maxLen) + " bytes");
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.size() > maxLen) ThrowArg(env(), fn, std::string(name) + " is longer than " + std::to_string(maxLen) + " bytes");
  if (s.find('\0') != std::string::npos) ThrowArg(env(), fn, std::string(name) + " contains a NUL character");
  return s;
}

std::string Args::OptStr(size_t i, const char* name) const {
  if (at(i).IsUndefined() || at(i).IsNull()) return "";
  return Str(i, name, 4096);
}

bool Args::OptBool(const Napi::Object& o, const char* key) const {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return false;
  if (!v.IsBoolean()) ThrowArg(env(), fn, std::string("option ") + key + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

Napi::Object Args::Obj(size_t i, const char* name) const {
  Napi::Value v = at(i);
  if (!v.IsObject() || v.IsArray() || v.IsFunction()) ThrowArg(env(), fn, std::string(name) + " must be an object");
  return v.As<Napi::Object>();
}

void Args::Bytes(size_t i, const char* name, uint8_t** data, size_t* len) const {
  Napi::Value v = at(i);
  // The data pointer comes straight from napi_get_{typedarray,dataview}_info: going through
  // .ArrayBuffer().Data() fails (a plain Error, not ours) for a view of a SharedArrayBuffer.
  if (v.IsTypedArray()) {
    Napi::TypedArray t = v.As<Napi::TypedArray>();
    *len = t.ByteLength();
    void* p = nullptr;
    if (*len && napi_get_typedarray_info(env(), v, nullptr, nullptr, &p, nullptr, nullptr) != napi_ok)
      ThrowArg(env(), fn, std::string(name) + " is not a readable TypedArray");
    *data = *len ? (uint8_t*)p : nullptr;
    if (*len && !*data) ThrowArg(env(), fn, std::string(name) + " has no memory");
    return;
  }
  if (v.IsDataView()) {
    Napi::DataView d = v.As<Napi::DataView>();
    *len = d.ByteLength();
    *data = *len ? (uint8_t*)d.Data() : nullptr;
    if (*len && !*data) ThrowArg(env(), fn, std::string(name) + " has no memory");
    return;
  }
  ThrowArg(env(), fn, std::string(name) + " must be a TypedArray or DataView");
}

Mapping& Args::Map(size_t i, const char* name) const {
  uint32_t id = (uint32_t)Int(i, name, 1, UINT32_MAX);
  State& st = GetState(env());
  auto it = st.mappings.find(id);
  if (it == st.mappings.end() || it->second.held)
    ThrowCode(env(), EBADF, fn, std::string(name) + " " + std::to_string(id) + " is not mapped");
  return it->second;
}

// ---- mappings and views ---------------------------------------------------------------------

namespace {
struct Finalize {
  std::shared_ptr<State> state;
  uint32_t view;
};

// The memory of `m` is no longer reachable from JS: release what is left of it.
void MaybeFreeHeld(State& st, uint32_t id) {
  auto it = st.mappings.find(id);
  if (it == st.mappings.end() || !it->second.held || !it->second.views.empty()) return;
  munmap(it->second.addr, it->second.length);
  st.mappings.erase(it);
}

// Runs when the last ArrayBuffer sharing a view's memory is collected (or after we detached the
// only one). No JS here: only the registries change.
void OnViewFreed(Napi::Env, void*, Finalize* f) {
  State& st = *f->state;
  auto it = st.views.find(f->view);
  if (it != st.views.end()) {
    uint32_t m = it->second.mapping;
    it->second.ref.Reset();
    st.views.erase(it);
    auto mi = st.mappings.find(m);
    if (mi != st.mappings.end()) {
      mi->second.views.erase(f->view);
      MaybeFreeHeld(st, m);
    }
  }
  delete f;
}
}  // namespace

std::shared_ptr<State> SharedState(Napi::Env env);

void CheckIds(Napi::Env env, const char* fn, bool view) {
  State& st = GetState(env);
  // a new mapping also makes one view (its whole-range buffer)
  if (st.nextView >= UINT32_MAX - 1 || (!view && st.nextMapping >= UINT32_MAX))
    ThrowCode(env, ENOMEM, fn, "out of mapping or buffer ids");
}

Napi::ArrayBuffer MakeView(Napi::Env env, uint32_t id, size_t offset, size_t length, uint32_t* viewId) {
  State& st = GetState(env);
  Mapping& m = st.mappings.at(id);
  // Callers check both before mapping anything; this only guards against a future caller that
  // does not (Node would free the finalizer data twice on a too-long buffer: an abort).
  if (length == 0 || length > st.maxBuffer || st.nextView >= UINT32_MAX)
    ThrowCode(env, EINVAL, "subBuffer", "a buffer of " + std::to_string(length) + " bytes cannot be made");
  uint32_t vid = st.nextView++;
  auto* fin = new Finalize{SharedState(env), vid};
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, m.addr + offset, length, OnViewFreed, fin);
  View& v = st.views[vid];
  v.mapping = id;
  v.offset = offset;
  v.length = length;
  v.ref = Napi::Persistent(ab);
  m.views.insert(vid);
  if (viewId) *viewId = vid;
  return ab;
}

void ForgetDmaMaps(State& st, int fd, uint32_t ioas, uint64_t iova, uint64_t size) {
  auto it = st.dmaMaps.find(fd);
  if (it == st.dmaMaps.end()) return;
  auto& v = it->second;
  for (size_t i = 0; i < v.size();) {
    const DmaMapRecord& r = v[i];
    // wholly inside, overflow-safe: start at or after iova, and its size within what is left of the range
    if (r.ioas == ioas && r.iova >= iova && r.iova - iova <= size && r.size <= size - (r.iova - iova)) {
      auto mi = st.mappings.find(r.mapping);
      if (mi != st.mappings.end() && mi->second.dmaMaps > 0) mi->second.dmaMaps--;
      v[i] = v.back();
      v.pop_back();
    } else {
      i++;
    }
  }
  if (v.empty()) st.dmaMaps.erase(it);
}

uint32_t AddMapping(Napi::Env env, uint8_t* addr, size_t len, bool writable, bool anonymous,
                    Napi::ArrayBuffer* whole) {
  State& st = GetState(env);
  uint32_t id = st.nextMapping++;
  Mapping& m = st.mappings[id];
  m.addr = addr;
  m.length = len;
  m.writable = writable;
  m.anonymous = anonymous;
  if (whole && writable) *whole = MakeView(env, id, 0, len, nullptr);
  return id;
}

}  // namespace dmapool
