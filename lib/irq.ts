/**
 * Device interrupts delivered into the event loop.
 *
 * `pci.enableInterrupts(kind)` (VFIO: MSI-X, MSI or INTx; UIO: INTx) returns an Interrupts
 * object with one InterruptVector per vector. Each vector owns a kernel descriptor that becomes
 * readable when the device interrupts (an eventfd VFIO signals, or /dev/uioN); waiting is a
 * libuv poll handle on it inside the addon — no thread, no blocking read — that is active (keeps
 * the process alive) only while a wait() is pending. poll() reads the count without blocking,
 * for drivers that busy-poll their completion queues.
 *
 * ```ts
 * const irqs = pci.enableInterrupts('msi');
 * for await (const n of irqs.vectors[0]) { handleCompletions(); }
 * ```
 * Level-triggered INTx stays masked after it fires (VFIO masks it; uio_pci_generic sets the PCI
 * INTx-disable bit): acknowledge the cause at the device, then call `irqs.unmask()`.
 * close() (also run by the PCI handle's and the device's close) disables the interrupts at the
 * device, stops every wait and rejects pending ones with EBADF.
 */
import { DmaPoolError } from './errors';
import { native } from './native';

export type IrqKind = 'msix' | 'msi' | 'intx';
export const IRQ_KINDS: readonly IrqKind[] = ['msix', 'msi', 'intx'];

/** What the function offers for one kind (VFIO_DEVICE_GET_IRQ_INFO). */
export interface IrqInfo {
  /** Vectors available (0: the function has none of this kind). */
  count: number;
  /** VFIO_IRQ_INFO_* flags (EVENTFD 1, MASKABLE 2, AUTOMASKED 4, NORESIZE 8); 0 for UIO. */
  flags: number;
}

interface Waiter {
  resolve(n: number): void;
  reject(e: Error): void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/** One interrupt vector: an async source of interrupt counts. */
export interface InterruptVector {
  readonly index: number;
  /** Resolves with the number of interrupts since the last wait/poll consumed them (≥ 1). */
  wait(signal?: AbortSignal): Promise<number>;
  /** Non-blocking: the count since last consumed, 0 when none (busy-polling drivers). */
  poll(): number;
  /** `for await (const n of vector)`: one count per wake-up; ends when the interrupts are closed. */
  [Symbol.asyncIterator](): AsyncIterator<number>;
}

/** The interrupts of one PCI function, enabled for one kind. */
export interface Interrupts {
  readonly kind: IrqKind;
  readonly vectors: readonly InterruptVector[];
  /** True once close() ran. */
  readonly closed: boolean;
  /** INTx (and UIO): re-enable after handling (VFIO_IRQ_SET_ACTION_UNMASK / INTx-disable bit clear). No-op for MSI/MSI-X. */
  unmask(): void;
  /** Disables the interrupts at the device, closes every vector, rejects pending waits (EBADF). Twice is harmless. */
  close(): void;
  [Symbol.dispose](): void;
}

/** @internal What a back end does for an Interrupts object. */
export interface IrqBackend {
  /** Re-enables a masked INTx. */
  unmask(): void;
  /** Disables the interrupts at the device (descriptors are closed afterwards by Interrupts). */
  disable(): void;
}

/** @internal One vector over a native interrupt handle. */
export class Vector implements InterruptVector {
  private waiters: Waiter[] = [];
  private banked = 0;
  private closed = false;
  /** The native handle id (an eventfd or /dev/uioN behind it). */
  readonly id: number;

  constructor(readonly index: number, private readonly what: string, make: (cb: (count: number, error?: string) => void) => number) {
    this.id = make((count, error) => {
      try {
        this.onFire(count, error);
      } catch (e) {
        process.nextTick(() => { throw e; }); // reported as uncaught; never thrown into the addon
      }
    });
  }

  private onFire(count: number, error?: string): void {
    if (this.closed) return;
    if (error) {
      const e = new DmaPoolError(error, `${this.what}: waiting for an interrupt failed (${error})`,
        error === 'EIO' ? 'the device went away (unbound or removed)' : undefined);
      const ws = this.waiters;
      this.waiters = [];
      for (const w of ws) this.settle(w, undefined, e);
      return;
    }
    const w = this.waiters.shift();
    if (!w) {
      this.banked += count;
      return;
    }
    this.settle(w, count);
    if (this.waiters.length) native().irqArm(this.id);
  }

  private settle(w: Waiter, n: number | undefined, e?: Error): void {
    if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
    if (e) w.reject(e);
    else w.resolve(n!);
  }

  private closedError(): DmaPoolError {
    return new DmaPoolError('EBADF', `${this.what}: interrupts are closed`);
  }

  poll(): number {
    if (this.closed) throw this.closedError();
    const n = this.banked + native().irqRead(this.id);
    this.banked = 0;
    return n;
  }

  wait(signal?: AbortSignal): Promise<number> {
    if (this.closed) return Promise.reject(this.closedError());
    if (signal !== undefined && !(signal instanceof AbortSignal))
      return Promise.reject(new DmaPoolError('EINVAL', `${this.what}: signal must be an AbortSignal`));
    if (signal?.aborted) return Promise.reject(aborted(this.what, signal));
    let ready: number;
    try {
      ready = this.waiters.length ? 0 : this.poll(); // earlier waiters are served first
    } catch (e) {
      return Promise.reject(e);
    }
    if (ready > 0) return Promise.resolve(ready);
    return new Promise<number>((resolve, reject) => {
      const w: Waiter = { resolve, reject, signal };
      if (signal) {
        w.onAbort = () => {
          const i = this.waiters.indexOf(w);
          if (i < 0) return;
          this.waiters.splice(i, 1);
          if (!this.waiters.length && !this.closed) native().irqDisarm(this.id);
          reject(aborted(this.what, signal));
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.waiters.push(w);
      try {
        native().irqArm(this.id);
      } catch (e) {
        this.waiters.pop();
        this.settle(w, undefined, e as Error);
      }
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<number> {
    return {
      next: async (): Promise<IteratorResult<number>> => {
        if (this.closed) return { value: undefined, done: true };
        try {
          return { value: await this.wait(), done: false };
        } catch (e) {
          if (this.closed && (e as DmaPoolError).code === 'EBADF') return { value: undefined, done: true };
          throw e;
        }
      },
      return: async (): Promise<IteratorResult<number>> => ({ value: undefined, done: true }),
    };
  }

  /** @internal */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      native().irqClose(this.id);
    } finally {
      const e = this.closedError();
      const ws = this.waiters;
      this.waiters = [];
      for (const w of ws) this.settle(w, undefined, e);
    }
  }
}

function aborted(what: string, signal: AbortSignal): DmaPoolError {
  return new DmaPoolError('ECANCELED', `${what}: wait aborted`, { cause: signal.reason });
}

/** @internal Interrupts over native handles and a back end (VFIO or UIO). */
export class InterruptSet implements Interrupts {
  private isClosed = false;
  constructor(
    readonly kind: IrqKind,
    readonly vectors: readonly Vector[],
    private readonly backend: IrqBackend,
    private readonly what: string,
    private readonly onClose?: () => void,
  ) {}

  get closed(): boolean {
    return this.isClosed;
  }

  unmask(): void {
    if (this.isClosed) throw new DmaPoolError('EBADF', `${this.what}: interrupts are closed`);
    this.backend.unmask();
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    let first: unknown;
    try {
      this.backend.disable();
    } catch (e) {
      first = e;
    }
    for (const v of this.vectors) {
      try {
        v.close();
      } catch (e) {
        first ??= e;
      }
    }
    this.onClose?.();
    if (first) throw first;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** @internal Checks a kind argument. */
export function checkIrqKind(what: string, kind: unknown): IrqKind {
  if (!IRQ_KINDS.includes(kind as IrqKind))
    throw new DmaPoolError('EINVAL', `${what}: interrupt kind must be 'msix', 'msi' or 'intx', got ${String(kind)}`);
  return kind as IrqKind;
}

/**
 * Makes `count` vectors from `make` (one native handle each); on any failure closes those made.
 * @internal
 */
export function makeVectors(what: string, count: number, make: (cb: (count: number, error?: string) => void) => number): Vector[] {
  const out: Vector[] = [];
  try {
    for (let i = 0; i < count; i++) out.push(new Vector(i, `${what} vector ${i}`, make));
  } catch (e) {
    for (const v of out) v.close();
    throw e;
  }
  return out;
}
