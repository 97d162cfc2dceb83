/*
 * runner.c — drives Linux's own mm/dmapool.c (compiled in userspace against shim.h by build.sh)
 * through exactly the loops of `dmapool bench` (lib/bench.ts) and prints the times as JSON.
 *
 *   runner --layout SIZE,ALIGN,BOUNDARY   (the offsets of the first page's blocks, as JSON)
 *   runner [--memory heap|slab|page] [--n N] [--size S] [--workloads LIST] [--reps R]
 *          [--warmups W] [--slab-size BYTES] [--no-prewarm] [--dmapool-test] [--dt-reps K]
 *
 * Workloads (LIST is comma-separated; the timed part is what lib/bench.ts times):
 *   seed-alloc  dma_pool_create("chain pool", dev, S, 0, 0) + N × dma_pool_alloc
 *   seed-free   N × dma_pool_free in allocation order + dma_pool_destroy (same run as seed-alloc)
 *   free-reverse, free-random   the frees in reverse / shuffled order (mulberry32 seed 12345,
 *               the same permutation as lib/rng.ts) + destroy
 *   churn       N random alloc/free at 50% occupancy (seeds 777 and 99991, as lib/bench.ts)
 * --dmapool-test runs the kernel's mm/dmapool_test.c when it was compiled in (6.12), else this
 * file's port of its loop (100 × alloc-all then free-all per row, the pool created untimed).
 *
 * What dma_alloc_coherent() returns (--memory): zeroed memory naturally aligned to the smallest
 * power of two ≥ the size (≥ 4 KiB), with a fake DMA handle (CPU address + 2^48):
 *   heap  aligned_alloc + memset from glibc's heap, kept resident and warmed before timing (the
 *         kernel's page allocator hands out recently freed, cache-warm pages; the cheap case).
 *         glibc interleaves kmalloc's small struct dma_page with these pages (one per 4 KiB page,
 *         where the kernel packs them in a kmalloc-64 slab), which slows 6.1's page-list walks;
 *   slab  like our `sim` provider: 2 MiB slabs, freshly mmapped (aligned, MADV_HUGEPAGE,
 *         MADV_DONTFORK), mlocked (which populates) or else MADV_POPULATE_WRITE, carved with a bump
 *         pointer and unmapped when their last chunk returns — our costs, like for like;
 *   page  one fresh mmap(MAP_POPULATE) per dma_alloc_coherent call, munmap on free.
 */
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shim.h"

#ifndef KVER
#define KVER "unknown"
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define DMA_OFFSET (1ULL << 48)

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *msg) {
  fprintf(stderr, "runner: %s\n", msg);
  exit(1);
}

/* ------------------------------------------------------------------ coherent memory */

enum mem_mode { MEM_HEAP, MEM_SLAB, MEM_PAGE };
static enum mem_mode mem = MEM_HEAP;
static size_t slab_size = 2UL << 20;

static struct {
  unsigned long allocs, frees, mmaps, munmaps, mlocked;
} mstat;

static size_t natural_align(size_t size) {
  size_t a = PAGE_SIZE;
  while (a < size) a <<= 1;
  return a;
}

/* an anonymous mapping of `size` bytes aligned to `align` (over-map and trim, like native/memory.cc) */
static void *map_aligned(size_t size, size_t align, int flags) {
  size_t span = size + (align > PAGE_SIZE ? align : 0);
  uint8_t *m = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
  if (m == MAP_FAILED) return NULL;
  mstat.mmaps++;
  uintptr_t base = (uintptr_t)m, aligned = (base + align - 1) & ~(uintptr_t)(align - 1);
  if (aligned > base) munmap(m, aligned - base);
  uintptr_t end = aligned + size, mend = base + span;
  if (mend > end) munmap((void *)end, mend - end);
  return (void *)aligned;
}

struct slab {
  uint8_t *base;
  size_t size, next;
  unsigned long live;
  struct slab *hnext;
};
#define SLAB_BUCKETS 4096
static struct slab *slab_hash[SLAB_BUCKETS];
static struct slab *slab_cur; /* the slab being carved */

static unsigned slab_bucket(uintptr_t base) { return (unsigned)((base / slab_size) % SLAB_BUCKETS); }

static struct slab *slab_new(size_t size) {
  struct slab *s = calloc(1, sizeof(*s));
  if (!s) return NULL;
  s->base = map_aligned(size, size, 0);
  if (!s->base) { free(s); return NULL; }
  s->size = size;
  madvise(s->base, size, MADV_HUGEPAGE); /* advisory */
  madvise(s->base, size, MADV_DONTFORK);
  if (mlock(s->base, size) == 0) mstat.mlocked++; /* mlock populates */
  else if (madvise(s->base, size, MADV_POPULATE_WRITE) != 0)
    for (size_t o = 0; o < size; o += PAGE_SIZE) ((volatile uint8_t *)s->base)[o] = 0;
  unsigned b = slab_bucket((uintptr_t)s->base);
  s->hnext = slab_hash[b];
  slab_hash[b] = s;
  return s;
}

static void *slab_alloc(size_t size) {
  size_t align = natural_align(size);
  if (align >= slab_size) {
    struct slab *s = slab_new(align);
    if (!s) return NULL;
    s->next = align;
    s->live = 1;
    return s->base;
  }
  if (!slab_cur || slab_cur->next + align > slab_cur->size) {
    slab_cur = slab_new(slab_size);
    if (!slab_cur) return NULL;
  }
  void *p = slab_cur->base + slab_cur->next; /* fresh slab memory is zero; chunks are never reused */
  slab_cur->next += align;
  slab_cur->live++;
  return p;
}

static void slab_free(void *p) {
  uintptr_t a = (uintptr_t)p, base = a & ~(uintptr_t)(slab_size - 1);
  for (struct slab **pp = &slab_hash[slab_bucket(base)]; *pp; pp = &(*pp)->hnext) {
    struct slab *s = *pp;
    if (a < (uintptr_t)s->base || a >= (uintptr_t)s->base + s->size) continue;
    if (--s->live == 0) {
      *pp = s->hnext;
      if (slab_cur == s) slab_cur = NULL;
      munmap(s->base, s->size);
      mstat.munmaps++;
      free(s);
    }
    return;
  }
  die("dma_free_coherent: address not from a slab");
}

void *dma_alloc_coherent(struct device *dev, size_t size, dma_addr_t *dma_handle, gfp_t gfp) {
  void *p;
  size_t align = natural_align(size);
  if (mem == MEM_HEAP) {
    p = aligned_alloc(align, ALIGN(size, align));
    if (p) memset(p, 0, size);
  } else if (mem == MEM_SLAB) {
    p = slab_alloc(size);
  } else {
    p = map_aligned(ALIGN(size, PAGE_SIZE), align, MAP_POPULATE);
  }
  if (!p) return NULL;
  mstat.allocs++;
  *dma_handle = (dma_addr_t)(uintptr_t)p + DMA_OFFSET;
  return p;
}

void dma_free_coherent(struct device *dev, size_t size, void *cpu_addr, dma_addr_t dma_handle) {
  if (dma_handle != (dma_addr_t)(uintptr_t)cpu_addr + DMA_OFFSET) die("dma_free_coherent: handle mismatch");
  mstat.frees++;
  if (mem == MEM_HEAP) free(cpu_addr);
  else if (mem == MEM_SLAB) slab_free(cpu_addr);
  else { munmap(cpu_addr, ALIGN(size, PAGE_SIZE)); mstat.munmaps++; }
}

/* The kernel's page allocator hands out recently freed (cache- and TLB-warm) pages; give glibc's
 * heap the same state before the first timed run: allocate and free the pages a run needs. */
static void prewarm_heap(size_t pages, size_t size) {
  void **v = malloc(pages * sizeof(*v));
  if (!v) die("out of memory");
  for (size_t i = 0; i < pages; i++) {
    v[i] = aligned_alloc(natural_align(size), ALIGN(size, natural_align(size)));
    if (v[i]) memset(v[i], 0, size);
  }
  for (size_t i = 0; i < pages; i++) free(v[i]);
  free(v);
}

/* ------------------------------------------------------------------ managed resources (unused) */

struct devres_hdr { dr_release_t release; struct device *dev; struct devres_hdr *next; };
static struct devres_hdr *devres_list;
void *devres_alloc(dr_release_t release, size_t size, gfp_t gfp) {
  struct devres_hdr *h = calloc(1, sizeof(*h) + size);
  if (!h) return NULL;
  h->release = release;
  return h + 1;
}
void devres_free(void *res) { if (res) free((struct devres_hdr *)res - 1); }
void devres_add(struct device *dev, void *res) {
  struct devres_hdr *h = (struct devres_hdr *)res - 1;
  h->dev = dev;
  h->next = devres_list;
  devres_list = h;
}
int devres_release(struct device *dev, dr_release_t release, dr_match_t match, void *match_data) {
  for (struct devres_hdr **pp = &devres_list; *pp; pp = &(*pp)->next) {
    struct devres_hdr *h = *pp;
    if (h->dev != dev || h->release != release || (match && !match(dev, h + 1, match_data))) continue;
    *pp = h->next;
    release(dev, h + 1);
    free(h);
    return 0;
  }
  return -ENOENT;
}

/* ------------------------------------------------------------------ printk: dmapool_test's lines */

#define MAX_DT 64
static struct dt_row { size_t size, align, boundary; int blocks; double us[MAX_DT]; int runs; } dt_rows[16];
static int dt_nrows;
/* the kernel's test table (mm/dmapool_test.c, 6.4 … 6.12); boundary is not in its printout */
static const size_t DT_PARMS[][3] = { {16, 16, 0}, {64, 64, 0}, {256, 256, 0}, {1024, 1024, 0}, {4096, 4096, 0}, {68, 32, 4096} };
#define DT_NPARMS (sizeof(DT_PARMS) / sizeof(DT_PARMS[0]))

static void dt_record(size_t size, size_t align, size_t boundary, int blocks, double us) {
  int i;
  for (i = 0; i < dt_nrows; i++)
    if (dt_rows[i].size == size && dt_rows[i].align == align && dt_rows[i].blocks == blocks) break;
  if (i == dt_nrows) {
    if (dt_nrows == 16) return;
    dt_nrows++;
    dt_rows[i] = (struct dt_row){ .size = size, .align = align, .boundary = boundary, .blocks = blocks };
  }
  if (dt_rows[i].runs < MAX_DT) dt_rows[i].us[dt_rows[i].runs++] = us;
}

int printk(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  size_t size, align;
  int blocks;
  unsigned long long us;
  if (sscanf(line, "dmapool test: size:%zu align:%zu blocks:%d time:%llu", &size, &align, &blocks, &us) == 4) {
    size_t boundary = 0;
    for (size_t i = 0; i < DT_NPARMS; i++)
      if (DT_PARMS[i][0] == size && DT_PARMS[i][1] == align) boundary = DT_PARMS[i][2];
    dt_record(size, align, boundary, blocks, (double)us);
  } else {
    fputs(line, stderr);
  }
  return n;
}

#ifdef HAVE_DMAPOOL_TEST
int shim_module_init(void);
#define DT_SOURCE "mm/dmapool_test.c"
#else
#define DT_SOURCE "runner (port of mm/dmapool_test.c's loop)"
/* 6.1 has no dmapool_test: the same loop over the same rows, timed the same way */
static int shim_module_init(void) {
  static struct device tdev;
  dev_set_name(&tdev, "dmapool-test");
  device_register(&tdev);
  for (size_t r = 0; r < DT_NPARMS; r++) {
    size_t size = DT_PARMS[r][0], align = DT_PARMS[r][1], boundary = DT_PARMS[r][2];
    int blocks = clamp_t(int, (PAGE_SIZE / size) * 512, 1024, 8192);
    struct { dma_addr_t dma; void *v; } *p = calloc(blocks, sizeof(*p));
    struct dma_pool *pool = dma_pool_create("test pool", &tdev, size, align, boundary);
    if (!p || !pool) die("dmapool_test: create failed");
    ktime_t t0 = ktime_get();
    for (int it = 0; it < 100; it++) {
      for (int i = 0; i < blocks; i++)
        if (!(p[i].v = dma_pool_alloc(pool, GFP_KERNEL, &p[i].dma))) die("dmapool_test: alloc failed");
      for (int i = 0; i < blocks; i++) dma_pool_free(pool, p[i].v, p[i].dma);
    }
    ktime_t t1 = ktime_get();
    printk("dmapool test: size:%-4zu align:%-4zu blocks:%-4d time:%llu\n", size, align, blocks,
           (unsigned long long)ktime_us_delta(t1, t0));
    dma_pool_destroy(pool);
    free(p);
  }
  return 0;
}
#endif

/* ------------------------------------------------------------------ the bench's loops */

/* mulberry32 and Fisher–Yates exactly as lib/rng.ts, so orders match ours */
static uint32_t rng_state;
static double rng_next(void) {
  rng_state += 0x6d2b79f5u;
  uint32_t t = rng_state;
  t = (t ^ (t >> 15)) * (t | 1u);
  t ^= t + (t ^ (t >> 7)) * (t | 61u);
  return (double)(t ^ (t >> 14)) / 4294967296.0;
}
struct blk { void *v; dma_addr_t dma; };
static void shuffle(struct blk *a, size_t n, uint32_t seed) {
  rng_state = seed;
  for (size_t i = n - 1; i > 0; i--) {
    size_t j = (size_t)(rng_next() * (double)(i + 1)) /* floor: non-negative */;
    struct blk t = a[i]; a[i] = a[j]; a[j] = t;
  }
}

static struct device bench_dev;
static size_t N = 373959, SIZE = 128;
static char pools_line[256];
static unsigned long run_pages;

enum { W_ALLOC, W_FREE, W_REVERSE, W_RANDOM, W_CHURN, W_COUNT };
static const char *W_NAMES[W_COUNT] = { "seed-alloc", "seed-free", "free-reverse", "free-random", "churn" };

static struct dma_pool *fill(struct blk *b) {
  struct dma_pool *pool = dma_pool_create("chain pool", &bench_dev, SIZE, 0, 0);
  if (!pool) die("dma_pool_create failed");
  for (size_t i = 0; i < N; i++)
    if (!(b[i].v = dma_pool_alloc(pool, GFP_KERNEL, &b[i].dma))) die("dma_pool_alloc failed");
  return pool;
}

/* the "pools" file line of the chain pool, as the kernel would show it (untimed) */
static void read_pools(void) {
  static char buf[PAGE_SIZE];
  if (!bench_dev.shim_attr) return;
  bench_dev.shim_attr->show(&bench_dev, bench_dev.shim_attr, buf);
  char *l = strstr(buf, "chain pool");
  if (!l) return;
  size_t k = strcspn(l, "\n");
  if (k >= sizeof(pools_line)) k = sizeof(pools_line) - 1;
  memcpy(pools_line, l, k);
  pools_line[k] = 0;
}

/* one run of a workload group; times in ms into out[] */
static void run(int w, struct blk *b, double out[W_COUNT]) {
  if (w == W_ALLOC) {
    unsigned long a0 = mstat.allocs;
    double t0 = now_ms();
    struct dma_pool *pool = fill(b);
    double t1 = now_ms();
    run_pages = mstat.allocs - a0;
    read_pools();
    double t2 = now_ms();
    for (size_t i = 0; i < N; i++) dma_pool_free(pool, b[i].v, b[i].dma);
    dma_pool_destroy(pool);
    double t3 = now_ms();
    out[W_ALLOC] = t1 - t0;
    out[W_FREE] = t3 - t2;
  } else if (w == W_REVERSE || w == W_RANDOM) {
    struct dma_pool *pool = fill(b);
    if (w == W_REVERSE) {
      for (size_t i = 0, j = N - 1; i < j; i++, j--) { struct blk t = b[i]; b[i] = b[j]; b[j] = t; }
    } else {
      shuffle(b, N, 12345);
    }
    double t0 = now_ms();
    for (size_t i = 0; i < N; i++) dma_pool_free(pool, b[i].v, b[i].dma);
    dma_pool_destroy(pool);
    out[w] = now_ms() - t0;
  } else if (w == W_CHURN) {
    struct dma_pool *pool = fill(b);
    shuffle(b, N, 777);
    size_t half = N / 2, live = half;
    for (size_t i = half; i < N; i++) dma_pool_free(pool, b[i].v, b[i].dma);
    double *ops = malloc(N * sizeof(*ops));
    if (!ops) die("out of memory");
    rng_state = 99991;
    for (size_t i = 0; i < N; i++) ops[i] = rng_next();
    double t0 = now_ms();
    for (size_t i = 0; i < N; i++) {
      double r = ops[i];
      if (r < 0.5 && live < N) {
        b[live].v = dma_pool_alloc(pool, GFP_KERNEL, &b[live].dma);
        if (!b[live].v) die("dma_pool_alloc failed");
        live++;
      } else if (live > 0) {
        size_t j = (size_t)(r * 2 * live) % live;
        dma_pool_free(pool, b[j].v, b[j].dma);
        b[j] = b[--live];
      }
    }
    out[W_CHURN] = now_ms() - t0;
    for (size_t i = 0; i < live; i++) dma_pool_free(pool, b[i].v, b[i].dma);
    dma_pool_destroy(pool);
    free(ops);
  }
}

static void print_runs(const double *xs, int n) {
  putchar('[');
  for (int i = 0; i < n; i++) printf("%s%.4f", i ? "," : "", xs[i]);
  putchar(']');
}

static void json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') printf("\\%c", *s);
    else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
    else putchar(*s);
  }
  putchar('"');
}

/* --layout SIZE,ALIGN,BOUNDARY: dma_pool_create() with those arguments, then the offsets (from
 * the first block) of the blocks the kernel hands out from its first page, in order, as JSON —
 * {"created":false} when create refuses. Tests compare them with our layout. */
static int layout(const char *spec) {
  unsigned long size, align, boundary;
  if (sscanf(spec, "%lu,%lu,%lu", &size, &align, &boundary) != 3) die("--layout SIZE,ALIGN,BOUNDARY");
  static struct device ldev;
  dev_set_name(&ldev, "dmapool-layout");
  device_register(&ldev);
  struct dma_pool *pool = dma_pool_create("layout", &ldev, size, align, boundary);
  if (!pool) { printf("{\"created\":false}\n"); return 0; }
  size_t page = size > PAGE_SIZE ? size : PAGE_SIZE, max = page + 2, n = 0;
  void **cpu = calloc(max, sizeof(*cpu));
  dma_addr_t *dma = calloc(max, sizeof(*dma));
  if (!cpu || !dma) die("out of memory");
  printf("{\"created\":true,\"offsets\":[");
  while (n < max) {
    cpu[n] = dma_pool_alloc(pool, GFP_KERNEL, &dma[n]);
    if (!cpu[n]) die("dma_pool_alloc failed");
    if (dma[n] < dma[0] || dma[n] - dma[0] >= page) { n++; break; } /* the second page */
    printf("%s%llu", n ? "," : "", (unsigned long long)(dma[n] - dma[0]));
    n++;
  }
  printf("]}\n");
  for (size_t i = 0; i < n; i++) dma_pool_free(pool, cpu[i], dma[i]);
  dma_pool_destroy(pool);
  free(cpu);
  free(dma);
  return 0;
}

int main(int argc, char **argv) {
  int reps = 5, warmups = 2, dt = 0, dt_reps = 3, prewarm = 1;
  if (argc == 3 && !strcmp(argv[1], "--layout")) return layout(argv[2]);
  int want[W_COUNT] = { 1, 1, 1, 1, 0 };
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--memory") && v) {
      if (!strcmp(v, "heap")) mem = MEM_HEAP;
      else if (!strcmp(v, "slab")) mem = MEM_SLAB;
      else if (!strcmp(v, "page")) mem = MEM_PAGE;
      else die("--memory must be heap, slab or page");
      i++;
    } else if (!strcmp(a, "--n") && v) { N = strtoul(v, NULL, 10); i++; }
    else if (!strcmp(a, "--size") && v) { SIZE = strtoul(v, NULL, 10); i++; }
    else if (!strcmp(a, "--reps") && v) { reps = atoi(v); i++; }
    else if (!strcmp(a, "--warmups") && v) { warmups = atoi(v); i++; }
    else if (!strcmp(a, "--slab-size") && v) {
      slab_size = strtoul(v, NULL, 10);
      if (slab_size < PAGE_SIZE || (slab_size & (slab_size - 1))) die("--slab-size must be a power of two >= 4096");
      i++;
    } else if (!strcmp(a, "--dt-reps") && v) { dt_reps = atoi(v); i++; }
    else if (!strcmp(a, "--dmapool-test")) dt = 1;
    else if (!strcmp(a, "--no-prewarm")) prewarm = 0;
    else if (!strcmp(a, "--workloads") && v) {
      memset(want, 0, sizeof(want));
      char *list = strdup(v), *save = NULL;
      for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int k;
        for (k = 0; k < W_COUNT && strcmp(t, W_NAMES[k]); k++) {}
        if (k == W_COUNT) die("unknown workload");
        want[k] = 1;
      }
      free(list);
      i++;
    } else die("usage: runner [--memory heap|slab|page] [--n N] [--size S] [--workloads LIST] [--reps R] "
               "[--warmups W] [--slab-size B] [--no-prewarm] [--dmapool-test] [--dt-reps K]");
  }
  if (N < 2 || SIZE == 0 || reps < 1 || reps > 1000 || warmups < 0 || dt_reps < 1 || dt_reps > MAX_DT)
    die("bad --n/--size/--reps/--warmups/--dt-reps");
  if (want[W_FREE]) want[W_ALLOC] = 1; /* the frees of the seed run follow its allocs */

  dev_set_name(&bench_dev, "dmapool-bench");
  device_register(&bench_dev);
  struct blk *b = calloc(N, sizeof(*b));
  if (!b) die("out of memory");
  if (mem == MEM_HEAP) {
    /* warm means resident: glibc would otherwise trim the heap top back to the kernel at every
     * destroy (and serve big chunks by mmap), so each run would fault its pages in again */
    mallopt(M_TRIM_THRESHOLD, INT_MAX);
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    /* a seed run's pages, with room for 6.1's legacy layout (31 blocks of 128 B per page, not 32) */
    if (prewarm) prewarm_heap(N / (PAGE_SIZE / SIZE > 1 ? PAGE_SIZE / SIZE - 1 : 1) + 64, SIZE);
  }

  static double times[W_COUNT][1000];
  unsigned long pages = 0, mmaps = 0, munmaps = 0, allocs = 0;
  int groups[] = { W_ALLOC, W_REVERSE, W_RANDOM, W_CHURN };
  for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
    int w = groups[g];
    if (!want[w]) continue;
    double out[W_COUNT];
    for (int i = 0; i < warmups; i++) run(w, b, out);
    for (int i = 0; i < reps; i++) {
      unsigned long m0 = mstat.mmaps, u0 = mstat.munmaps, a0 = mstat.allocs;
      run(w, b, out);
      if (w == W_ALLOC) { times[W_ALLOC][i] = out[W_ALLOC]; times[W_FREE][i] = out[W_FREE]; }
      else times[w][i] = out[w];
      if (w == W_ALLOC) { pages = run_pages; mmaps = mstat.mmaps - m0; munmaps = mstat.munmaps - u0; allocs = mstat.allocs - a0; }
    }
  }
  if (dt) {
    for (int i = 0; i < dt_reps; i++) if (shim_module_init() != 0) die("dmapool_test failed");
  }

  static const char *MEM_NAMES[] = { "heap", "slab", "page" };
  printf("{\"kernel\":");
  json_string(KVER);
  printf(",\"memory\":\"%s\",\"slab_size\":%zu,\"n\":%zu,\"size\":%zu,\"reps\":%d,\"warmups\":%d,\"prewarm\":%s,",
         MEM_NAMES[mem], mem == MEM_SLAB ? slab_size : 0, N, SIZE, reps, warmups,
         mem == MEM_HEAP && prewarm ? "true" : "false");
  printf("\"pages\":%lu,\"coherent_allocs_per_run\":%lu,\"mmaps_per_run\":%lu,\"munmaps_per_run\":%lu,\"pools\":",
         pages, allocs, mmaps, munmaps);
  json_string(pools_line);
  printf(",\"results\":[");
  int first = 1;
  for (int w = 0; w < W_COUNT; w++) {
    if (!want[w]) continue;
    printf("%s{\"workload\":\"%s\",\"runs_ms\":", first ? "" : ",", W_NAMES[w]);
    print_runs(times[w], reps);
    putchar('}');
    first = 0;
  }
  printf("],\"dmapool_test_source\":");
  json_string(dt ? DT_SOURCE : "");
  printf(",\"dmapool_test\":[");
  for (int i = 0; i < dt_nrows; i++) {
    printf("%s{\"size\":%zu,\"align\":%zu,\"boundary\":%zu,\"blocks\":%d,\"runs_us\":", i ? "," : "",
           dt_rows[i].size, dt_rows[i].align, dt_rows[i].boundary, dt_rows[i].blocks);
    print_runs(dt_rows[i].us, dt_rows[i].runs);
    putchar('}');
  }
  printf("]}\n");
  free(b);
  return 0;
}
