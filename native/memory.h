#pragma once
#include <napi.h>

namespace dmapool {
// An ArrayBuffer over foreign memory that is never freed by the GC.
Napi::ArrayBuffer ExternalBuffer(Napi::Env env, void* addr, size_t len);
void InitMemory(Napi::Env env, Napi::Object exports);
void InitFd(Napi::Env env, Napi::Object exports);
}  // namespace dmapool
