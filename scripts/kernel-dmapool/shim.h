/*
 * shim.h — just enough of the kernel's headers for Linux's mm/dmapool.c (6.1 and 6.12) and
 * mm/dmapool_test.c (6.12) to compile and run in userspace, unmodified except for their #include
 * lines (build.sh strips those and force-includes this file). Our own code, written from the
 * kernel's documented interfaces; the kernel sources themselves are fetched at bench time and never
 * committed.
 *
 * Choices that matter for timing (see runner.c for the memory behind dma_alloc_coherent):
 *  - spinlocks and mutexes are no-ops (one thread; the kernel pays an irq-save + atomic per call);
 *  - kmalloc/kzalloc/kfree are glibc malloc/calloc/free;
 *  - want_init_on_alloc()/want_init_on_free() follow the upstream defaults
 *    (CONFIG_INIT_ON_ALLOC_DEFAULT_ON / _FREE_ off): only __GFP_ZERO zeroes a block;
 *  - DMAPOOL_DEBUG stays off (CONFIG_SLUB_DEBUG_ON unset, as in distribution kernels).
 */
#ifndef DMAPOOL_KERNEL_SHIM_H
#define DMAPOOL_KERNEL_SHIM_H

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

/* ---- types ---- */
typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef unsigned long long u64; /* the kernel's int-ll64.h */
typedef long long s64;
typedef u64 dma_addr_t;
typedef unsigned int gfp_t;
typedef s64 ktime_t;

#define GFP_KERNEL 0x0cc0u
#define GFP_ATOMIC 0x0820u
#define GFP_NOWAIT 0x0800u
#define __GFP_ZERO 0x100u

#ifndef PAGE_SIZE
#define PAGE_SIZE 4096UL
#endif
#define PAGE_SHIFT 12

/* ---- compiler and kernel.h helpers ---- */
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define __ALIGN_MASK(x, mask) (((x) + (mask)) & ~(mask))
#define ALIGN(x, a) __ALIGN_MASK(x, (__typeof__(x))(a) - 1)
#define min(x, y) ({ __typeof__(x) _x = (x); __typeof__(y) _y = (y); _x < _y ? _x : _y; })
#define max(x, y) ({ __typeof__(x) _x = (x); __typeof__(y) _y = (y); _x > _y ? _x : _y; })
#define min_t(t, x, y) ({ t _x = (x); t _y = (y); _x < _y ? _x : _y; })
#define max_t(t, x, y) ({ t _x = (x); t _y = (y); _x > _y ? _x : _y; })
#define clamp_t(t, v, lo, hi) min_t(t, max_t(t, v, lo), hi)
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define DMA_BIT_MASK(n) (((n) == 64) ? ~0ULL : ((1ULL << (n)) - 1))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))
#define READ_ONCE(x) (*(volatile __typeof__(x) *)&(x))

/* module and symbol plumbing: declarations that compile to nothing */
#define EXPORT_SYMBOL(sym) extern __typeof__(sym) sym
#define EXPORT_SYMBOL_GPL(sym) extern __typeof__(sym) sym
#define MODULE_LICENSE(x) extern char shim_modinfo_unused[]
#define MODULE_DESCRIPTION(x) extern char shim_modinfo_unused[]
#define MODULE_AUTHOR(x) extern char shim_modinfo_unused[]
/* the test module's init/exit become callable entry points for runner.c */
#define module_init(fn) int shim_module_init(void) { return fn(); }
#define module_exit(fn) void shim_module_exit(void) { fn(); }

/* ---- printing ---- */
#define KERN_ERR ""
#define KERN_WARNING ""
#define KERN_INFO ""
enum { DUMP_PREFIX_NONE, DUMP_PREFIX_ADDRESS, DUMP_PREFIX_OFFSET };
/* printk is runner.c's: it collects dmapool_test's result lines */
int printk(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define pr_err(...) fprintf(stderr, __VA_ARGS__)
#define pr_warn(...) fprintf(stderr, __VA_ARGS__)
#define pr_info(...) printk(__VA_ARGS__)
static inline void print_hex_dump(const char *level, const char *prefix, int type, int rowsize,
                                  int groupsize, const void *buf, size_t len, bool ascii) {}
#define WARN_ON(cond) ({ int __c = !!(cond); if (unlikely(__c)) fprintf(stderr, "WARNING: %s:%d: %s\n", __FILE__, __LINE__, #cond); __c; })
#define WARN_ON_ONCE(cond) WARN_ON(cond)
#define BUG_ON(cond) do { if (unlikely(cond)) { fprintf(stderr, "BUG: %s:%d\n", __FILE__, __LINE__); abort(); } } while (0)

static inline int scnprintf(char *buf, size_t size, const char *fmt, ...) {
  va_list ap;
  int n;
  if (size == 0) return 0;
  va_start(ap, fmt);
  n = vsnprintf(buf, size, fmt, ap);
  va_end(ap);
  if (n < 0) return 0;
  return (size_t)n >= size ? (int)size - 1 : n;
}
static inline int sysfs_emit_at(char *buf, int at, const char *fmt, ...) {
  va_list ap;
  int n;
  if (at < 0 || (size_t)at >= PAGE_SIZE) return 0;
  va_start(ap, fmt);
  n = vsnprintf(buf + at, PAGE_SIZE - at, fmt, ap);
  va_end(ap);
  if (n < 0) return 0;
  return (size_t)n >= PAGE_SIZE - at ? (int)(PAGE_SIZE - at - 1) : n;
}
#define sysfs_emit(buf, ...) sysfs_emit_at(buf, 0, __VA_ARGS__)

static inline ssize_t strscpy(char *dst, const char *src, size_t count) {
  size_t n = strnlen(src, count);
  if (count == 0) return -E2BIG;
  if (n == count) {
    memcpy(dst, src, count - 1);
    dst[count - 1] = 0;
    return -E2BIG;
  }
  memcpy(dst, src, n + 1);
  return (ssize_t)n;
}

/* ---- lists (include/linux/list.h semantics, including the poisoning of deleted entries) ---- */
struct list_head {
  struct list_head *next, *prev;
};
#define LIST_POISON1 ((void *)0xdead000000000100ULL)
#define LIST_POISON2 ((void *)0xdead000000000122ULL)
#define LIST_HEAD_INIT(name) { &(name), &(name) }
static inline void INIT_LIST_HEAD(struct list_head *list) {
  WRITE_ONCE(list->next, list);
  list->prev = list;
}
static inline void __list_add(struct list_head *new, struct list_head *prev, struct list_head *next) {
  next->prev = new;
  new->next = next;
  new->prev = prev;
  WRITE_ONCE(prev->next, new);
}
static inline void list_add(struct list_head *new, struct list_head *head) { __list_add(new, head, head->next); }
static inline void list_add_tail(struct list_head *new, struct list_head *head) { __list_add(new, head->prev, head); }
static inline void __list_del(struct list_head *prev, struct list_head *next) {
  next->prev = prev;
  WRITE_ONCE(prev->next, next);
}
static inline void list_del(struct list_head *entry) {
  __list_del(entry->prev, entry->next);
  entry->next = LIST_POISON1;
  entry->prev = LIST_POISON2;
}
static inline int list_empty(const struct list_head *head) { return READ_ONCE(head->next) == head; }
#define list_entry(ptr, type, member) container_of(ptr, type, member)
#define list_first_entry(ptr, type, member) list_entry((ptr)->next, type, member)
#define list_next_entry(pos, member) list_entry((pos)->member.next, __typeof__(*(pos)), member)
#define list_entry_is_head(pos, head, member) (&pos->member == (head))
#define list_for_each_entry(pos, head, member)                         \
  for (pos = list_first_entry(head, __typeof__(*pos), member);         \
       !list_entry_is_head(pos, head, member); pos = list_next_entry(pos, member))
#define list_for_each_entry_safe(pos, n, head, member)                 \
  for (pos = list_first_entry(head, __typeof__(*pos), member),         \
      n = list_next_entry(pos, member);                                \
       !list_entry_is_head(pos, head, member); pos = n, n = list_next_entry(n, member))

/* ---- locks: one thread, so no-ops ---- */
typedef struct { int unused; } spinlock_t;
struct mutex { int unused; };
#define DEFINE_MUTEX(name) struct mutex name = { 0 }
#define mutex_lock(m) ((void)(m))
#define mutex_unlock(m) ((void)(m))
#define spin_lock_init(l) ((void)(l))
#define spin_lock(l) ((void)(l))
#define spin_unlock(l) ((void)(l))
#define spin_lock_irq(l) ((void)(l))
#define spin_unlock_irq(l) ((void)(l))
#define spin_lock_irqsave(l, flags) do { (void)(l); (flags) = 0; } while (0)
#define spin_unlock_irqrestore(l, flags) do { (void)(l); (void)(flags); } while (0)

/* ---- scheduling and allocation-context checks ---- */
#define might_alloc(gfp) ((void)(gfp))
#define might_sleep() ((void)0)
static inline int need_resched(void) { return 0; }
static inline void cond_resched(void) {}
static inline bool want_init_on_alloc(gfp_t flags) { return (flags & __GFP_ZERO) != 0; }
static inline bool want_init_on_free(void) { return false; }

/* ---- slab ---- */
static inline void *kmalloc(size_t size, gfp_t flags) {
  return (flags & __GFP_ZERO) ? calloc(1, size) : malloc(size);
}
static inline void *kzalloc(size_t size, gfp_t flags) { return calloc(1, size); }
static inline void *kcalloc(size_t n, size_t size, gfp_t flags) { return calloc(n, size); }
static inline void kfree(const void *p) { free((void *)p); }

/* ---- poison.h ---- */
#define POOL_POISON_FREED 0xa7
#define POOL_POISON_ALLOCATED 0xa9

/* ---- devices and sysfs attributes ---- */
struct attribute {
  const char *name;
  unsigned short mode;
};
struct device;
struct device_attribute {
  struct attribute attr;
  ssize_t (*show)(struct device *dev, struct device_attribute *attr, char *buf);
  ssize_t (*store)(struct device *dev, struct device_attribute *attr, const char *buf, size_t count);
};
#define __ATTR_RO(_name) { .attr = { .name = #_name, .mode = 0444 }, .show = _name##_show }
#define DEVICE_ATTR_RO(_name) struct device_attribute dev_attr_##_name = __ATTR_RO(_name)

struct dma_map_ops;
struct device {
  struct list_head dma_pools;  /* dma pools (if dma'ble device) */
  char name[64];
  u64 *dma_mask;
  u64 coherent_dma_mask;
  void (*release)(struct device *dev);
  /* shim: the attribute file device_create_file() made, for runner.c to read ("pools") */
  struct device_attribute *shim_attr;
};
static inline const char *dev_name(const struct device *dev) { return dev->name; }
static inline int dev_set_name(struct device *dev, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(dev->name, sizeof(dev->name), fmt, ap);
  va_end(ap);
  return 0;
}
static inline void device_initialize(struct device *dev) {
  INIT_LIST_HEAD(&dev->dma_pools);
  dev->shim_attr = NULL;
}
static inline int device_register(struct device *dev) { device_initialize(dev); return 0; }
static inline void device_del(struct device *dev) {}
static inline void put_device(struct device *dev) {}
static inline int device_create_file(struct device *dev, const struct device_attribute *attr) {
  dev->shim_attr = (struct device_attribute *)attr;
  return 0;
}
static inline void device_remove_file(struct device *dev, const struct device_attribute *attr) {
  if (dev->shim_attr == attr) dev->shim_attr = NULL;
}
#define dev_err(dev, fmt, ...) fprintf(stderr, "%s: " fmt, dev_name(dev), ##__VA_ARGS__)
#define dev_warn(dev, fmt, ...) fprintf(stderr, "%s: " fmt, dev_name(dev), ##__VA_ARGS__)
#define dev_info(dev, fmt, ...) fprintf(stderr, "%s: " fmt, dev_name(dev), ##__VA_ARGS__)

/* managed resources (dmam_pool_*): runner.c implements them; the benchmark never uses them */
typedef void (*dr_release_t)(struct device *dev, void *res);
typedef int (*dr_match_t)(struct device *dev, void *res, void *match_data);
void *devres_alloc(dr_release_t release, size_t size, gfp_t gfp);
void devres_free(void *res);
void devres_add(struct device *dev, void *res);
int devres_release(struct device *dev, dr_release_t release, dr_match_t match, void *match_data);

/* ---- DMA API: runner.c serves coherent memory (see its memory modes) ---- */
void *dma_alloc_coherent(struct device *dev, size_t size, dma_addr_t *dma_handle, gfp_t gfp);
void dma_free_coherent(struct device *dev, size_t size, void *cpu_addr, dma_addr_t dma_handle);
static inline void set_dma_ops(struct device *dev, const struct dma_map_ops *ops) {}
static inline int dma_set_mask_and_coherent(struct device *dev, u64 mask) {
  if (dev->dma_mask) *dev->dma_mask = mask;
  dev->coherent_dma_mask = mask;
  return 0;
}

/* ---- the dmapool API (include/linux/dmapool.h), implemented by the kernel's mm/dmapool.c ---- */
struct dma_pool;
struct dma_pool *dma_pool_create(const char *name, struct device *dev, size_t size, size_t align,
                                 size_t boundary);
void dma_pool_destroy(struct dma_pool *pool);
void *dma_pool_alloc(struct dma_pool *pool, gfp_t mem_flags, dma_addr_t *handle);
void dma_pool_free(struct dma_pool *pool, void *vaddr, dma_addr_t addr);
struct dma_pool *dmam_pool_create(const char *name, struct device *dev, size_t size, size_t align,
                                  size_t allocation);
void dmam_pool_destroy(struct dma_pool *pool);
static inline void *dma_pool_zalloc(struct dma_pool *pool, gfp_t mem_flags, dma_addr_t *handle) {
  return dma_pool_alloc(pool, mem_flags | __GFP_ZERO, handle);
}

/* ---- time ---- */
static inline ktime_t ktime_get(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (ktime_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
static inline s64 ktime_us_delta(ktime_t later, ktime_t earlier) { return (later - earlier) / 1000; }

#endif /* DMAPOOL_KERNEL_SHIM_H */
