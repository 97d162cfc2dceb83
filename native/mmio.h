// MMIO accessors: one access of exactly the requested width to a BAR mapping, ordered on both
// sides against every other load and store as the DEVICE observes them, so a doorbell write is
// seen after the descriptor writes to DMA memory before it, and DMA memory read after a status
// register read is not read early.
//
// std::atomic_thread_fence is not that fence: it orders between CPUs only. On arm64 it compiles
// to `dmb ish` (inner shareable), and a PCIe device is an observer in the outer-shareable domain,
// so an `ish` barrier does not order a write to coherent DMA memory before a doorbell as the
// device sees it. Linux fences writel with `dmb oshst` before the store (__iowmb = dma_wmb) and
// readl with `dmb oshld` after the load (__iormb = dma_rmb); we put a full `dmb osh` on both
// sides of both (a superset: a completion-queue read must also not drift past the head-doorbell
// write that lets the device reuse that entry). On x86 (BARs mapped UC, or WC through
// resource*_wc) `mfence` orders every load and store, drains write-combining buffers, and serves
// as the compiler barrier too.
//
// The arm64 accesses are inline asm with a plain base register (ldr/str [xN]), like Linux's
// __raw_readl/__raw_writel: from C the compiler may pick a pre/post-index or pair form, which a
// hypervisor cannot emulate when the BAR traps (no valid syndrome), and may split or merge volatile
// accesses across widths. Other architectures are refused at build time rather than fenced wrongly.
#pragma once

#include <cstdint>

namespace dmapool {
namespace mmio {

#if defined(__x86_64__)

inline void Fence() { __asm__ __volatile__("mfence" ::: "memory"); }
// dma_rmb(): x86 never reorders loads with older loads, and DMA to coherent memory is snooped:
// a compiler barrier (as Linux's x86 dma_rmb() is).
inline void DmaReadBarrier() { __asm__ __volatile__("" ::: "memory"); }
inline uint8_t Read8(const volatile void* p) { return *(const volatile uint8_t*)p; }
inline uint16_t Read16(const volatile void* p) { return *(const volatile uint16_t*)p; }
inline uint32_t Read32(const volatile void* p) { return *(const volatile uint32_t*)p; }
inline uint64_t Read64(const volatile void* p) { return *(const volatile uint64_t*)p; }
inline void Write8(volatile void* p, uint8_t v) { *(volatile uint8_t*)p = v; }
inline void Write16(volatile void* p, uint16_t v) { *(volatile uint16_t*)p = v; }
inline void Write32(volatile void* p, uint32_t v) { *(volatile uint32_t*)p = v; }
inline void Write64(volatile void* p, uint64_t v) { *(volatile uint64_t*)p = v; }

#elif defined(__aarch64__)

inline void Fence() { __asm__ __volatile__("dmb osh" ::: "memory"); }
// dma_rmb(): loads of coherent DMA memory after it are not satisfied before loads before it
// (a completion's fields read only after its valid/phase bit), as Linux's arm64 dma_rmb().
inline void DmaReadBarrier() { __asm__ __volatile__("dmb oshld" ::: "memory"); }
inline uint8_t Read8(const volatile void* p) {
  uint8_t v;
  __asm__ __volatile__("ldrb %w0, [%1]" : "=r"(v) : "r"(p) : "memory");
  return v;
}
inline uint16_t Read16(const volatile void* p) {
  uint16_t v;
  __asm__ __volatile__("ldrh %w0, [%1]" : "=r"(v) : "r"(p) : "memory");
  return v;
}
inline uint32_t Read32(const volatile void* p) {
  uint32_t v;
  __asm__ __volatile__("ldr %w0, [%1]" : "=r"(v) : "r"(p) : "memory");
  return v;
}
inline uint64_t Read64(const volatile void* p) {
  uint64_t v;
  __asm__ __volatile__("ldr %x0, [%1]" : "=r"(v) : "r"(p) : "memory");
  return v;
}
inline void Write8(volatile void* p, uint8_t v) { __asm__ __volatile__("strb %w0, [%1]" : : "rZ"(v), "r"(p) : "memory"); }
inline void Write16(volatile void* p, uint16_t v) { __asm__ __volatile__("strh %w0, [%1]" : : "rZ"(v), "r"(p) : "memory"); }
inline void Write32(volatile void* p, uint32_t v) { __asm__ __volatile__("str %w0, [%1]" : : "rZ"(v), "r"(p) : "memory"); }
inline void Write64(volatile void* p, uint64_t v) { __asm__ __volatile__("str %x0, [%1]" : : "rZ"(v), "r"(p) : "memory"); }

#else
#error "dmapool: no verified MMIO barrier for this architecture (x86_64 and aarch64 are supported; see native/mmio.h)"
#endif

}  // namespace mmio
}  // namespace dmapool
