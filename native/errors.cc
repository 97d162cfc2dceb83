#include "errors.h"

#include <cerrno>
#include <cstring>

namespace dmapool {

const char* ErrnoName(int err) {
  switch (err) {
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(EBADF)
    E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(ENODEV)
    E(ENOTDIR) E(EISDIR) E(EINVAL) E(ENFILE) E(EMFILE) E(ENOTTY) E(EFBIG)
    E(ENOSPC) E(ESPIPE) E(EROFS) E(ERANGE) E(ENOSYS) E(EOPNOTSUPP)
    E(EOVERFLOW) E(ETIMEDOUT) E(EPROTO) E(EDQUOT)
#undef E
    default: {
      static thread_local char buf[16];
      snprintf(buf, sizeof buf, "E%d", err);
      return buf;
    }
  }
}

std::string DefaultHint(int err, const std::string& syscall) {
  if (err == ENOMEM && (syscall == "mlock" || syscall == "mmap"))
    return "raise RLIMIT_MEMLOCK (ulimit -l unlimited, or LimitMEMLOCK= in the systemd unit) "
           "or reduce the slab size";
  if (err == EPERM || err == EACCES)
    return "run as root or give this user access to the device node (udev rule / chown)";
  if (err == ENOENT) return "the kernel interface is missing: load the module or check the path";
  if (err == ENOTTY) return "the file does not implement this ioctl (wrong device node or old kernel)";
  return "";
}

Napi::Error ErrnoError(Napi::Env env, int err, const std::string& syscall,
                       const std::string& path, const std::string& hint) {
  std::string h = hint.empty() ? DefaultHint(err, syscall) : hint;
  std::string msg = std::string(ErrnoName(err)) + ": " + syscall;
  if (!path.empty()) msg += " " + path;
  msg += " failed: ";
  msg += strerror(err);
  if (!h.empty()) msg += " (hint: " + h + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  if (!path.empty()) e.Set("path", Napi::String::New(env, path));
  if (!h.empty()) e.Set("hint", Napi::String::New(env, h));
  return e;
}

}  // namespace dmapool
