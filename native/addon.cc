// dmapool native shim: syscalls and ioctls only. All allocator policy lives in TypeScript.
#include <napi.h>

#include "memory.h"

static Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  dmapool::InitMemory(env, exports);
  dmapool::InitFd(env, exports);
  return exports;
}

NODE_API_MODULE(dmapool, InitAll)
