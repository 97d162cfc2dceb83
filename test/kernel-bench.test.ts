/**
 * `dmapool bench --kernel` plumbing, without network: the shim + runner compile against a tiny
 * fake dmapool.c (our own code with the kernel's dmapool API, not the kernel's), the runner's JSON
 * is parsed, ratios are computed, and the CLI prints the kernel beside ours or one line saying why
 * it cannot. When Debian's sources are already cached in ~/.cache/dmapool, the real mm/dmapool.c
 * of 6.1 and 6.12 run with a small n (skipped, with the reason, otherwise). Speed is never asserted.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { BenchResult } from '../lib/cli/bench';
import { FLOORS, type FloorKind } from '../lib/cli/js-floor';
import {
  buildKernelRunners, buildScript, cacheDir, formatKernel, KernelBench, type KernelRatio, kernelRatios, mergeKernelRounds, kernelResults, parseBuildOutput, withRoundRatios,
  parseRunnerOutput,
} from '../lib/cli/kernel-bench';
import { itIf, requirement, RUNS_IN } from './helpers';

const CLI = path.join(__dirname, '..', 'lib', 'cli', 'main.js');

/** A fake mm/dmapool.c: a page list + in-block free list, with include lines build.sh must strip. */
const FAKE_DMAPOOL = `// fixture: a tiny allocator with the kernel's dmapool API (not the kernel's code)
#include <linux/device.h>
#include <linux/dmapool.h>
  #  include "does-not-exist.h"

struct dma_pool {
  struct list_head page_list;
  spinlock_t lock;
  struct device *dev;
  size_t size, allocation, nr_active, nr_blocks, nr_pages;
  void *next_block;
  char name[32];
  struct list_head pools;
};
struct fx_page { struct list_head page_list; void *vaddr; dma_addr_t dma; };
struct fx_block { void *next; dma_addr_t dma; };

static DEFINE_MUTEX(pools_lock);

static ssize_t pools_show(struct device *dev, struct device_attribute *attr, char *buf)
{
  struct dma_pool *pool;
  int size = sysfs_emit(buf, "poolinfo - 0.1\\n");
  mutex_lock(&pools_lock);
  list_for_each_entry(pool, &dev->dma_pools, pools)
    size += sysfs_emit_at(buf, size, "%-16s %4zu %4zu %4zu %2zu\\n", pool->name, pool->nr_active,
                          pool->nr_blocks, pool->size, pool->nr_pages);
  mutex_unlock(&pools_lock);
  return size;
}
static DEVICE_ATTR_RO(pools);

struct dma_pool *dma_pool_create(const char *name, struct device *dev, size_t size, size_t align, size_t boundary)
{
  struct dma_pool *pool = kzalloc(sizeof(*pool), GFP_KERNEL);
  if (!pool) return NULL;
  if (align == 0) align = 1;
  if (size < sizeof(struct fx_block)) size = sizeof(struct fx_block);
  pool->size = ALIGN(size, align);
  pool->allocation = max_t(size_t, pool->size, PAGE_SIZE);
  pool->dev = dev;
  strscpy(pool->name, name, sizeof(pool->name));
  INIT_LIST_HEAD(&pool->page_list);
  spin_lock_init(&pool->lock);
  if (list_empty(&dev->dma_pools) && device_create_file(dev, &dev_attr_pools)) { kfree(pool); return NULL; }
  list_add(&pool->pools, &dev->dma_pools);
  return pool;
}
EXPORT_SYMBOL(dma_pool_create);

void *dma_pool_alloc(struct dma_pool *pool, gfp_t mem_flags, dma_addr_t *handle)
{
  unsigned long flags;
  struct fx_block *block;
  might_alloc(mem_flags);
  spin_lock_irqsave(&pool->lock, flags);
  if (!pool->next_block) {
    struct fx_page *page = kmalloc(sizeof(*page), mem_flags);
    size_t off;
    if (!page) { spin_unlock_irqrestore(&pool->lock, flags); return NULL; }
    page->vaddr = dma_alloc_coherent(pool->dev, pool->allocation, &page->dma, mem_flags);
    if (!page->vaddr) { kfree(page); spin_unlock_irqrestore(&pool->lock, flags); return NULL; }
    /* the shim's promises: zeroed memory, CPU and DMA addresses page-aligned, handle != CPU address */
    BUG_ON(((uintptr_t)page->vaddr & (PAGE_SIZE - 1)) || (page->dma & (PAGE_SIZE - 1)));
    BUG_ON(page->dma == (dma_addr_t)(uintptr_t)page->vaddr);
    for (off = 0; off < pool->allocation; off++) BUG_ON(((u8 *)page->vaddr)[off]);
    for (off = pool->allocation - pool->size + 1; off-- > 0; ) {
      if (off % pool->size) continue;
      block = page->vaddr + off;
      block->dma = page->dma + off;
      block->next = pool->next_block;
      pool->next_block = block;
      pool->nr_blocks++;
    }
    list_add(&page->page_list, &pool->page_list);
    pool->nr_pages++;
  }
  block = pool->next_block;
  pool->next_block = block->next;
  pool->nr_active++;
  spin_unlock_irqrestore(&pool->lock, flags);
  *handle = block->dma;
  if (want_init_on_alloc(mem_flags)) memset(block, 0, pool->size);
  return block;
}
EXPORT_SYMBOL(dma_pool_alloc);

void dma_pool_free(struct dma_pool *pool, void *vaddr, dma_addr_t dma)
{
  struct fx_block *block = vaddr;
  unsigned long flags;
  spin_lock_irqsave(&pool->lock, flags);
  block->dma = dma;
  block->next = pool->next_block;
  pool->next_block = block;
  pool->nr_active--;
  spin_unlock_irqrestore(&pool->lock, flags);
}
EXPORT_SYMBOL(dma_pool_free);

void dma_pool_destroy(struct dma_pool *pool)
{
  struct fx_page *page, *tmp;
  if (unlikely(!pool)) return;
  list_del(&pool->pools);
  if (list_empty(&pool->dev->dma_pools)) device_remove_file(pool->dev, &dev_attr_pools);
  if (WARN_ON(pool->nr_active)) dev_err(pool->dev, "%s %s busy\\n", __func__, pool->name);
  list_for_each_entry_safe(page, tmp, &pool->page_list, page_list) {
    dma_free_coherent(pool->dev, pool->allocation, page->vaddr, page->dma);
    list_del(&page->page_list);
    kfree(page);
  }
  kfree(pool);
}
EXPORT_SYMBOL(dma_pool_destroy);

static void dmam_pool_release(struct device *dev, void *res) { dma_pool_destroy(*(struct dma_pool **)res); }
static int dmam_pool_match(struct device *dev, void *res, void *match_data) { return *(struct dma_pool **)res == match_data; }
struct dma_pool *dmam_pool_create(const char *name, struct device *dev, size_t size, size_t align, size_t allocation)
{
  struct dma_pool **ptr = devres_alloc(dmam_pool_release, sizeof(*ptr), GFP_KERNEL), *pool;
  if (!ptr) return NULL;
  pool = *ptr = dma_pool_create(name, dev, size, align, allocation);
  if (pool) devres_add(dev, ptr); else devres_free(ptr);
  return pool;
}
void dmam_pool_destroy(struct dma_pool *pool)
{
  WARN_ON(devres_release(pool->dev, dmam_pool_release, dmam_pool_match, pool));
}
`;

/** A fake mm/dmapool_test.c: one row, printed in the kernel test's format. */
const FAKE_DMAPOOL_TEST = `#include <linux/module.h>
#include <linux/ktime.h>
static struct device test_dev;
static int fx_checks(void)
{
  struct dma_pool *pool;
  dma_addr_t dma[256];
  void *v[256];
  ktime_t t0;
  int i, it;
  dev_set_name(&test_dev, "dmapool-test");
  if (device_register(&test_dev)) return -1;
  pool = dma_pool_create("test pool", &test_dev, 68, 32, 4096);
  if (!pool) return -ENOMEM;
  t0 = ktime_get();
  for (it = 0; it < 100; it++) {
    for (i = 0; i < 256; i++) if (!(v[i] = dma_pool_alloc(pool, GFP_KERNEL, &dma[i]))) return -ENOMEM;
    for (i = 0; i < 256; i++) dma_pool_free(pool, v[i], dma[i]);
  }
  printk("dmapool test: size:%-4zu align:%-4zu blocks:%-4d time:%llu\\n", (size_t)68, (size_t)32, 256,
         (unsigned long long)ktime_us_delta(ktime_get(), t0));
  dma_pool_destroy(pool);
  device_del(&test_dev);
  put_device(&test_dev);
  return 0;
}
static void fx_exit(void) {}
module_init(fx_checks);
module_exit(fx_exit);
MODULE_LICENSE("GPL");
`;

function tmpdir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `dmapool-kernel-${tag}-`));
}

function compileFixture(withTest: boolean): { dir: string; runner: string } {
  const dir = tmpdir('fixture');
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'dmapool.c'), FAKE_DMAPOOL);
  if (withTest) fs.writeFileSync(path.join(src, 'dmapool_test.c'), FAKE_DMAPOOL_TEST);
  const out = path.join(dir, 'out');
  execFileSync('bash', [buildScript()!, '--compile', src, out, 'fixture'], { stdio: ['ignore', 'pipe', 'pipe'] });
  return { dir, runner: path.join(out, 'runner') };
}

function ours(strategy: string, workload: string, median: number, extra: Partial<BenchResult> = {}): BenchResult {
  return {
    strategy: strategy as BenchResult['strategy'], provider: 'sim', workload, mode: 'warm', n: 373959, size: 128,
    median_ms: median, min_ms: median, max_ms: median, runs: 5, visits: 0, pages: 11687,
    counters: { nativeCalls: 0, iommuMaps: 0, iommuUnmaps: 0, slabsMapped: 0, slabsUnmapped: 0, slabsLeaked: 0, bytesMapped: 0, slabsReused: 0, nativeMs: 0 },
    metadata_bytes_per_page: 200, device: 'kept', ...extra,
  };
}

describe('bench --kernel (Linux mm/dmapool.c beside ours)', function () {
  this.timeout(600000);
  const cleanup: string[] = [];
  after(() => { for (const d of cleanup) fs.rmSync(d, { recursive: true, force: true }); });

  it('the shim and runner compile against a fake dmapool.c; include lines are stripped into the build dir', () => {
    const { dir, runner } = compileFixture(true);
    cleanup.push(dir);
    assert.ok(fs.existsSync(runner));
    for (const f of ['dmapool.c', 'dmapool_test.c']) {
      const c = fs.readFileSync(path.join(dir, 'out', f), 'utf8');
      assert.doesNotMatch(c, /#\s*include/, f);
      assert.match(c, f === 'dmapool.c' ? /struct dma_pool \{/ : /module_init\(fx_checks\)/);
    }
    // the sources themselves are untouched
    assert.match(fs.readFileSync(path.join(dir, 'src', 'dmapool.c'), 'utf8'), /#include <linux\/dmapool.h>/);
  });

  for (const memory of ['heap', 'slab', 'page'] as const) {
    it(`the runner runs every workload and dmapool_test.c with ${memory} memory and prints parseable JSON`, () => {
      const { dir, runner } = compileFixture(true);
      cleanup.push(dir);
      const json = execFileSync(runner, ['--memory', memory, '--n', '5000', '--reps', '2', '--warmups', '1',
        '--workloads', 'seed-alloc,seed-free,free-reverse,free-random,churn', '--dmapool-test', '--dt-reps', '2'], { encoding: 'utf8' });
      const r = parseRunnerOutput(json);
      assert.equal(r.kernel, 'fixture');
      assert.equal(r.memory, memory);
      assert.equal(r.n, 5000);
      assert.equal(r.pages, Math.ceil(5000 / 32)); // 128-byte blocks, 32 per 4 KiB page
      assert.match(r.pools, /^chain pool\s+5000\s+5024\s+128\s+157$/);
      assert.equal(r.mmaps_per_run, memory === 'heap' ? 0 : memory === 'slab' ? 1 : 157);
      assert.equal(r.munmaps_per_run, r.mmaps_per_run);
      assert.deepEqual(r.results.map((x) => x.workload), ['seed-alloc', 'seed-free', 'free-reverse', 'free-random', 'churn']);
      for (const x of r.results) { assert.equal(x.runs_ms.length, 2); for (const t of x.runs_ms) assert.ok(t >= 0); }
      assert.equal(r.dmapool_test_source, 'mm/dmapool_test.c');
      assert.equal(r.dmapool_test.length, 1);
      assert.deepEqual({ ...r.dmapool_test[0], runs_us: r.dmapool_test[0].runs_us.length },
        { size: 68, align: 32, boundary: 4096, blocks: 256, runs_us: 2 });
    });
  }

  it("without dmapool_test.c (6.1) the runner's port of its loop runs the six kernel rows", () => {
    const { dir, runner } = compileFixture(false);
    cleanup.push(dir);
    const r = parseRunnerOutput(execFileSync(runner, ['--n', '1000', '--reps', '1', '--warmups', '0', '--workloads', 'seed-alloc',
      '--dmapool-test', '--dt-reps', '1'], { encoding: 'utf8' }));
    assert.match(r.dmapool_test_source, /^runner/);
    assert.deepEqual(r.dmapool_test.map((d) => [d.size, d.align, d.boundary, d.blocks]),
      [[16, 16, 0, 8192], [64, 64, 0, 8192], [256, 256, 0, 8192], [1024, 1024, 0, 2048], [4096, 4096, 0, 1024], [68, 32, 4096, 8192]]);
    // only what was asked is reported (the frees of a seed run are timed with its allocs)
    assert.deepEqual(r.results.map((x) => x.workload), ['seed-alloc']);
  });

  it('the runner refuses bad arguments', () => {
    const { dir, runner } = compileFixture(false);
    cleanup.push(dir);
    for (const args of [['--memory', 'swap'], ['--workloads', 'nope'], ['--reps', '0'], ['--slab-size', '3000'], ['--bogus']])
      assert.throws(() => execFileSync(runner, args, { stdio: 'pipe' }), /Command failed/, args.join(' '));
  });

  it('parses build.sh lines, turns runner output into results and computes ours / Linux 6.12 ratios', () => {
    const builds = parseBuildOutput('noise\n{"series":"6.1","error":"offline"}\n{"series":"6.12","version":"6.12.1-1","runner":"/x/runner","dmapool_test":true}\n{bad json\n');
    assert.deepEqual(builds, [{ series: '6.1', error: 'offline' },
      { series: '6.12', version: '6.12.1-1', runner: '/x/runner', dmapool_test: true }]);
    const out = (memory: string, alloc: number[], free: number[]) => parseRunnerOutput(JSON.stringify({
      kernel: '6.12.1-1', memory, slab_size: 0, n: 373959, size: 128, reps: 3, warmups: 2, prewarm: true, pages: 11687,
      coherent_allocs_per_run: 11687, mmaps_per_run: memory === 'slab' ? 23 : 0, munmaps_per_run: memory === 'slab' ? 23 : 0,
      pools: 'chain pool       373959 373984  128 11687',
      results: [{ workload: 'seed-alloc', runs_ms: alloc }, { workload: 'seed-free', runs_ms: free }],
      dmapool_test_source: 'mm/dmapool_test.c',
      dmapool_test: [{ size: 68, align: 32, boundary: 4096, blocks: 8192, runs_us: [8000, 7000, 9000] }],
    }));
    const k = [...kernelResults('6.12', '6.12.1-1', out('heap', [10, 8, 9], [5, 6, 4])),
      ...kernelResults('6.12', '6.12.1-1', out('slab', [12, 11, 13], [4, 4, 4]))];
    const alloc = k.find((r) => r.memory === 'heap' && r.workload === 'seed-alloc')!;
    assert.deepEqual([alloc.median_ms, alloc.min_ms, alloc.max_ms, alloc.runs, alloc.pages], [9, 8, 10, 3, 11687]);
    const dt = k.find((r) => r.memory === 'heap' && r.workload === 'dmapool_test')!;
    assert.deepEqual([dt.size, dt.align, dt.boundary, dt.n, dt.median_ms, dt.source], [68, 32, 4096, 8192, 8, 'mm/dmapool_test.c']);

    const mine = [ours('rbtree', 'seed-alloc', 18), ours('rbtree', 'seed-free', 2), ours('stack', 'seed-alloc', 9),
      ours('rbtree', 'seed-alloc', 18, { device: 'fresh' }), ours('rbtree', 'seed-free', 2, { device: 'fresh' }),
      ours('stack', 'seed-alloc', 9, { device: 'fresh' }), ours('rbtree', 'seed-alloc', 40, { mode: 'cold', device: 'fresh' }),
      ours('rbtree', 'dmapool_test', 4, { n: 8192, size: 68, note: 'align 32 boundary 4096' }),
      ours('rbtree', 'dmapool_test', 4, { n: 8192, size: 16, note: 'align 16 boundary 0' })];
    const ratios = kernelRatios(mine, k);
    const get = (s: string, w: string, m: string) => ratios.find((r) => r.strategy === s && r.workload === w && r.memory === m)?.ratio;
    assert.equal(get('rbtree', 'seed-alloc', 'heap'), 2);
    assert.equal(get('rbtree', 'seed-alloc', 'slab'), 1.5);
    assert.equal(get('rbtree', 'seed-free', 'heap'), 0.4);
    assert.equal(get('stack', 'seed-alloc', 'heap'), 1);
    assert.equal(get('rbtree', 'dmapool_test', 'heap'), 0.5);
    // 68-byte row only, against heap (our kept device); no fresh-device dmapool_test of ours to set beside slab
    assert.equal(ratios.filter((r) => r.workload === 'dmapool_test').length, 1);
    assert.equal(ratios.length, 4 + 3); // cold figures are never compared
    // like for like: heap is compared with our kept device, slab with our fresh one
    const fresh = kernelRatios([ours('rbtree', 'seed-alloc', 100, { device: 'fresh' })], k);
    assert.deepEqual(fresh.map((r) => [r.memory, r.ratio]), [['slab', 100 / 12]]);
    assert.deepEqual(Object.keys(ratios[0]), ['strategy', 'workload', 'size', 'kernel', 'memory', 'ours_ms', 'kernel_ms', 'ratio']);
    assert.deepEqual(kernelRatios(mine, k, '6.1'), []);
    // rounds of the kernel's figures merge per kernel, memory and row; errors once each
    const kb2 = mergeKernelRounds([{ builds, runs: [], results: k, ratios: [], errors: ['x'] },
      { builds, runs: [], results: k.map((r) => ({ ...r, median_ms: r.median_ms * 3, runs: 1 })), ratios: [], errors: ['x', 'y'] }]);
    assert.equal(kb2.results.length, k.length);
    const a2 = kb2.results.find((r) => r.memory === 'heap' && r.workload === 'seed-alloc')!;
    assert.deepEqual([a2.median_ms, a2.runs], [18, 4]); // median of 9 and 27; 3 + 1 runs
    assert.deepEqual(kb2.errors, ['x', 'y']);
    // the JS floor's dmapool_test rows are set beside the kernel's heap rows of the same size and blocks
    const floorRow = (size: number, n: number, ms: number, floor: FloorKind = 'JS floor') => ({ floor, workload: 'dmapool_test',
      mode: 'warm' as const, n, size, median_ms: ms, min_ms: ms, max_ms: ms, runs: 1, pages: 0 });
    // and their warm seed figures beside the kernel's heap seed rows; cold ones, other counts and sizes never
    const seedRow = (workload: string, ms: number, o: Partial<{ mode: 'cold' | 'warm'; n: number; size: number; floor: FloorKind }> = {}) =>
      ({ floor: 'checked floor' as FloorKind, workload, mode: 'warm' as const, n: 373959, size: 128, median_ms: ms, min_ms: ms, max_ms: ms,
        runs: 1, pages: 0, ...o });
    const withFloor = kernelRatios(mine, k, undefined,
      [floorRow(68, 8192, 2), floorRow(68, 1024, 1), floorRow(16, 8192, 1), floorRow(68, 8192, 4, 'checked floor'),
        seedRow('seed-alloc', 4.5), seedRow('seed-free', 2.5), seedRow('seed-alloc', 1, { mode: 'cold' }),
        seedRow('seed-alloc', 1, { n: 1000 }), seedRow('seed-alloc', 1, { size: 64 }), seedRow('dmapool_test', 1, { n: 8192, size: 68, mode: 'cold' })]);
    assert.deepEqual(withFloor.filter((r) => FLOORS.includes(r.strategy as FloorKind)).map((r) => [r.strategy, r.workload, r.size, r.memory, r.ratio]),
      [['checked floor', 'seed-alloc', 128, 'heap', 0.5], ['checked floor', 'seed-free', 128, 'heap', 0.5],
        ['JS floor', 'dmapool_test', 68, 'heap', 0.25], ['checked floor', 'dmapool_test', 68, 'heap', 0.5]]);
    assert.equal(withFloor.length, ratios.length + 4);
    const withFloorText = formatKernel(mine, { builds, runs: [], results: k, ratios: withFloor, errors: [] });
    assert.match(withFloorText, /dmapool_test 68\s+heap\s+0\.50\s+—\s+0\.25\s+0\.50/);
    assert.match(withFloorText, /create \+ alloc loop\s+heap\s+2\.00\s+1\.00\s+—\s+0\.50/);
    // a floor's random-order free is held against the kernel's in-order free, as radix's is
    const randomRatio = { strategy: 'paged floor', workload: 'free-random', size: 128, kernel: '6.12', memory: 'heap' as const,
      ours_ms: 7, kernel_ms: 8, ratio: 7 / 8 };
    const randomText = formatKernel([...mine, ours('radix', 'free-random', 15)],
      { builds, runs: [], results: k, ratios: [...withFloor, randomRatio], errors: [] });
    assert.match(randomText, /radix free random \/ Linux 6\.12 free in order \(heap\): 3\.00/);
    assert.match(randomText, /paged floor free random \/ Linux 6\.12 free in order \(heap\): 1\.40/);
    assert.match(withFloorText, /checked floor: the same stack, each free checked/);

    const kb: KernelBench = { builds, runs: [], results: k, ratios, errors: ['Linux 6.1 mm/dmapool.c not measured: offline'] };
    const text = formatKernel(mine, kb);
    assert.match(text, /^Linux 6\.1 mm\/dmapool\.c not measured: offline$/m);
    assert.match(text, /ours \/ Linux 6\.12/);
    assert.match(text, /create \+ alloc loop\s+heap\s+2\.00\s+1\.00/);
    assert.match(text, /fresh slabs instead of warm heap cost create \+ alloc loop \+3\.00 ms, free loop \+ destroy −1\.00 ms/);
    assert.equal(formatKernel(mine, { ...kb, results: [], ratios: [] }), 'Linux 6.1 mm/dmapool.c not measured: offline');
    assert.doesNotMatch(text, /round by round/); // one round: no spread to show
  });

  it('with several rounds each ratio carries its round-by-round ratios, and the seed pair prints their spread', () => {
    const r = (strategy: string, workload: string, ratio: number, memory: 'heap' | 'slab' = 'heap'): KernelRatio =>
      ({ strategy, workload, size: 128, kernel: '6.12', memory, ours_ms: ratio, kernel_ms: 1, ratio });
    const rounds = [
      [r('rbtree', 'seed-alloc', 0.9), r('rbtree', 'seed-free', 1.3), r('stack', 'seed-alloc', 1.1), r('paged floor', 'seed-alloc', 0.3),
        r('rbtree', 'free-random', 12), r('rbtree', 'seed-alloc', 1.8, 'slab')],
      [r('rbtree', 'seed-alloc', 1.4), r('rbtree', 'seed-free', 0.8), r('stack', 'seed-alloc', 1.0), r('paged floor', 'seed-alloc', 0.4),
        r('rbtree', 'free-random', 14), r('rbtree', 'seed-alloc', 1.6, 'slab')],
      [r('rbtree', 'seed-alloc', 1.0), r('rbtree', 'seed-free', 0.7), r('paged floor', 'seed-alloc', 0.35),
        r('rbtree', 'free-random', 13), r('rbtree', 'seed-alloc', 1.7, 'slab')],
    ];
    // the merged ratios (of merged medians) keep their own value; the rounds' come beside them
    const merged = [r('rbtree', 'seed-alloc', 1.05), r('rbtree', 'seed-free', 0.75), r('stack', 'seed-alloc', 1.05),
      r('paged floor', 'seed-alloc', 0.35), r('rbtree', 'free-random', 13), r('rbtree', 'seed-alloc', 1.7, 'slab'), r('radix', 'seed-alloc', 1)];
    const got = withRoundRatios(merged, rounds);
    const rr = (st: string, wl: string, m = 'heap') => got.find((x) => x.strategy === st && x.workload === wl && x.memory === m)!;
    assert.deepEqual(rr('rbtree', 'seed-alloc').round_ratios, [0.9, 1.4, 1.0]);
    assert.equal(rr('rbtree', 'seed-alloc').ratio, 1.05);
    assert.deepEqual(rr('rbtree', 'seed-alloc', 'slab').round_ratios, [1.8, 1.6, 1.7]);
    assert.deepEqual(rr('stack', 'seed-alloc').round_ratios, [1.1, 1.0]); // measured in two rounds only
    assert.equal(rr('radix', 'seed-alloc').round_ratios, undefined); // in no round
    assert.equal(merged[0].round_ratios, undefined, 'the merged list is not changed');
    assert.deepEqual(withRoundRatios(merged, [rounds[0]]).map((x) => x.round_ratios), merged.map(() => undefined));

    const k = kernelResults('6.12', '6.12.1-1', parseRunnerOutput(JSON.stringify({
      kernel: '6.12.1-1', memory: 'heap', slab_size: 0, n: 373959, size: 128, reps: 1, warmups: 0, prewarm: true, pages: 11687,
      coherent_allocs_per_run: 11687, mmaps_per_run: 0, munmaps_per_run: 0, pools: 'chain pool 373959 373984 128 11687',
      results: [{ workload: 'seed-alloc', runs_ms: [1] }, { workload: 'seed-free', runs_ms: [1] }],
      dmapool_test_source: 'mm/dmapool_test.c', dmapool_test: [] })));
    const text = formatKernel([], { builds: [], runs: [], results: k, ratios: got, errors: [] });
    assert.match(text, /round by round \(each round's ours ÷ that round's Linux 6\.12/);
    assert.match(text, /create \+ alloc loop \(heap\)\s+rbtree 0\.90–1\.40 \(2 of 3 ≤ 1\.00\), stack 1\.00–1\.10 \(1 of 2 ≤ 1\.00\)$/m);
    assert.match(text, /free loop \+ destroy \(heap\)\s+rbtree 0\.70–1\.30 \(2 of 3 ≤ 1\.00\)$/m);
    assert.match(text, /create \+ alloc loop \(slab\)\s+rbtree 1\.60–1\.80 \(0 of 3 ≤ 1\.00\)$/m);
    // the floors and the other workloads are not repeated there
    assert.doesNotMatch(text.slice(text.indexOf('round by round')), /floor|random/);
  });

  it('bench --kernel without network or cache prints one line per kernel and still our figures', () => {
    const cache = tmpdir('empty-cache');
    cleanup.push(cache);
    const env = { ...process.env, DMAPOOL_CACHE: cache, DMAPOOL_KERNEL_OFFLINE: '1' };
    const args = ['bench', '--device', 'sim', '-n', '3000', '--reps', '1', '--warmups', '0', '--strategies', 'rbtree',
      '--workloads', 'seed-alloc,seed-free', '--no-cold', '--no-dmapool-test'];
    const j = JSON.parse(execFileSync(process.execPath, [CLI, ...args, '--json', '--kernel'], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] }));
    assert.equal(j.results.length, 4); // seed-alloc and seed-free, each on a kept and on a fresh device
    assert.deepEqual(j.kernel.results, []);
    assert.equal(j.kernel.errors.length, 2);
    for (const e of j.kernel.errors) assert.match(e, /^Linux 6\.12? mm\/dmapool\.c not measured: linux-source-6\.12? is not cached/);
    const text = execFileSync(process.execPath, [CLI, ...args, '--kernel', '6.12'], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });
    assert.match(text, /create\(\) \+ dma_pool_alloc\(\) loop/);
    assert.equal(text.split('\n').filter((l) => /not measured/.test(l)).length, 1);
    // without --kernel nothing changes: no kernel key
    const plain = JSON.parse(execFileSync(process.execPath, [CLI, ...args, '--json'], { encoding: 'utf8', env }));
    assert.ok(!('kernel' in plain));
  });

  it('bench --kernel builds a cached source and prints the kernel beside ours with ratios (fake 6.12 source)', () => {
    const cache = tmpdir('fake-cache');
    cleanup.push(cache);
    const src = path.join(cache, 'kernel-src-6.12.0-fixture');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'dmapool.c'), FAKE_DMAPOOL);
    fs.writeFileSync(path.join(src, 'dmapool_test.c'), FAKE_DMAPOOL_TEST);
    fs.writeFileSync(path.join(src, '.complete'), '');
    const env = { ...process.env, DMAPOOL_CACHE: cache, DMAPOOL_KERNEL_OFFLINE: '1' };
    const j = JSON.parse(execFileSync(process.execPath, [CLI, 'bench', '--device', 'sim', '-n', '4000', '--reps', '1', '--warmups', '0',
      '--strategies', 'rbtree,stack', '--workloads', 'seed-alloc,seed-free,free-random', '--no-cold', '--no-dmapool-test',
      '--kernel', '6.12', '--rounds', '2', '--json'], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] }));
    assert.deepEqual(j.kernel.errors, []);
    assert.equal(j.kernel.builds[0].version, '6.12.0-fixture');
    assert.ok(j.kernel.builds[0].runner.startsWith(path.join(cache, 'kernel-bench-6.12.0-fixture-')));
    const combos = j.kernel.results.map((r: { memory: string; workload: string }) => `${r.memory}/${r.workload}`).sort();
    assert.deepEqual(combos, ['heap/free-random', 'heap/seed-alloc', 'heap/seed-free', 'slab/free-random', 'slab/seed-alloc', 'slab/seed-free']);
    for (const r of j.kernel.results)
      for (const k of ['kernel', 'version', 'memory', 'workload', 'mode', 'n', 'size', 'median_ms', 'min_ms', 'max_ms', 'runs', 'pages'])
        assert.ok(k in r, `missing ${k}`);
    // vs heap: our kept device, every workload; vs slab: our fresh device, which runs the seed pair
    // only; and each floor's random-order free (their figures are set beside heap only)
    assert.equal(j.kernel.ratios.length, 2 * 3 + 2 * 2 + FLOORS.length);
    assert.deepEqual(j.kernel.ratios.filter((r: { strategy: string }) => FLOORS.includes(r.strategy as FloorKind))
      .map((r: { strategy: string; workload: string; memory: string }) => [r.strategy, r.workload, r.memory]),
    FLOORS.map((f) => [f, 'free-random', 'heap']));
    for (const r of j.kernel.ratios) assert.ok(r.ratio > 0 && Number.isFinite(r.ratio));
    // two rounds: every ratio with the ratio of each round, each from that round's own figures
    for (const r of j.kernel.ratios) {
      assert.equal(r.round_ratios.length, 2, `${r.strategy} ${r.workload} ${r.memory}`);
      for (const x of r.round_ratios) assert.ok(x > 0 && Number.isFinite(x));
    }
    assert.equal(j.kernel.runs.length, 2);
    assert.equal(j.kernel.runs[0].pages, Math.ceil(4000 / 32));
  });

  it('a cached source that does not compile becomes one error line naming the compiler error', () => {
    const cache = tmpdir('broken-cache');
    cleanup.push(cache);
    const src = path.join(cache, 'kernel-src-6.1.0-broken');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'dmapool.c'), '#include <linux/dmapool.h>\nint broken = ;\n');
    fs.writeFileSync(path.join(src, '.complete'), '');
    const saved = process.env.DMAPOOL_CACHE;
    process.env.DMAPOOL_CACHE = cache;
    try {
      const [b] = buildKernelRunners(['6.1'], { offline: true });
      assert.equal(b.series, '6.1');
      assert.equal(b.runner, undefined);
      assert.match(b.error!, /^Linux 6\.1\.0-broken mm\/dmapool\.c did not compile against the shim: dmapool\.c:\d+:\d+: error: /);
    } finally {
      if (saved === undefined) delete process.env.DMAPOOL_CACHE; else process.env.DMAPOOL_CACHE = saved;
    }
  });

  const cached = fs.existsSync(cacheDir()) ? fs.readdirSync(cacheDir()).filter((d) => /^kernel-src-6\.1(2)?\.\d/.test(d) &&
    fs.existsSync(path.join(cacheDir(), d, '.complete'))) : [];
  itIf(requirement('a cached Linux 6.1 or 6.12 source (`dmapool bench --kernel` fetches it)', RUNS_IN.kernelCache,
    !cached.length && `no linux-source cached in ${cacheDir()}`), 'the real mm/dmapool.c of 6.1 and 6.12 runs when its source is cached (small n)', () => {
    const builds = buildKernelRunners(['6.1', '6.12'], { offline: true }).filter((b) => b.runner);
    const series = new Set(cached.map((d) => (d.startsWith('kernel-src-6.12.') ? '6.12' : '6.1')));
    assert.deepEqual(builds.map((b) => b.series).sort(), [...series].sort(), 'every cached source must build');
    for (const b of builds) {
      const r = parseRunnerOutput(execFileSync(b.runner!, ['--n', '20000', '--reps', '1', '--warmups', '0', '--workloads',
        'seed-alloc,seed-free,free-random', ...(b.series === '6.12' ? ['--dmapool-test', '--dt-reps', '1'] : [])], { encoding: 'utf8' }));
      assert.equal(r.kernel, b.version);
      // 6.1 wastes the last block before each boundary (31 per page); 6.12 fits 32
      const perPage = b.series === '6.1' ? 31 : 32;
      assert.equal(r.pages, Math.ceil(20000 / perPage), `${b.series} pages`);
      assert.match(r.pools, new RegExp(`^chain pool\\s+20000\\s+\\d+\\s+128\\s+${r.pages}$`));
      assert.deepEqual(r.results.map((x) => x.workload), ['seed-alloc', 'seed-free', 'free-random']);
      if (b.series === '6.12') {
        assert.equal(r.dmapool_test_source, 'mm/dmapool_test.c');
        assert.equal(r.dmapool_test.length, 6);
        assert.ok(b.dmapool_test);
      }
      console.log(`    Linux ${b.version}: seed alloc ${r.results[0].runs_ms[0].toFixed(2)} ms, free ${r.results[1].runs_ms[0].toFixed(2)} ms (n 20000)`);
    }
  });
});
