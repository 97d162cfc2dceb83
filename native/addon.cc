// dmapool native shim: syscalls and ioctls only. All allocator policy lives in TypeScript.
#include "shim.h"  // first: it configures napi.h

namespace dmapool {
// setErrorClass(DmaPoolError): the class every error of the shim is constructed with
// (new DmaPoolError(code, message, { errno, syscall, path, hint })).
static Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) ThrowArg(info.Env(), "setErrorClass", "argument must be a constructor");
  GetState(info.Env()).errorClass = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}
}  // namespace dmapool

static Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  dmapool::InitState(env);
  dmapool::InitMemory(env, exports);
  dmapool::InitFd(env, exports);
  dmapool::InitIrq(env, exports);
  dmapool::InitIommufd(env, exports);
  exports.Set("setErrorClass", Napi::Function::New(env, dmapool::SetErrorClass, "setErrorClass"));
  return exports;
}

NODE_API_MODULE(dmapool, InitAll)
