/**
 * The one error class of the library. Everything dmapool throws — pool and provider errors,
 * argument checks, and failures of the native shim (which is handed this class at load and
 * constructs it itself) — is a DmaPoolError whose `code` is an errno name, so callers switch on
 * it the way they would on a syscall failure. Every error leaves the object it came from unchanged.
 *
 * | code       | meaning                                                                   |
 * |------------|---------------------------------------------------------------------------|
 * | EINVAL     | a bad argument (type, range, unknown option; create rules; not a block start) |
 * | EFAULT     | a DMA address no page of this pool contains ("bad dma"); PFN not readable |
 * | EALREADY   | the block is already free (double free), or `view()` of a free block      |
 * | EBADF      | the pool, device or handle was destroyed/closed                           |
 * | EBUSY      | destroy/close while blocks are in use; a group or device already in use   |
 * | ENOMEM     | no more DMA memory, IOVA space, mappings or memlock allowance             |
 * | ENODEV     | the provider or device is unavailable, or owned by another kernel driver |
 * | EOVERFLOW  | a kernel answer that does not fit (capability chain kept growing)         |
 * | EPERM, EACCES, ENOENT, ENOTTY, … | a syscall's own errno, passed through unchanged     |
 */
export type DmaPoolErrorCode =
  | 'EINVAL' | 'EFAULT' | 'EALREADY' | 'EBADF' | 'EBUSY' | 'ENOMEM' | 'ENODEV' | 'EOVERFLOW'
  | 'EPERM' | 'EACCES' | 'ENOENT' | 'ENOTTY' | 'ENOSPC' | 'EIO' | 'ENXIO' | 'EEXIST' | 'ENOSYS'
  | 'EOPNOTSUPP' | 'ETIMEDOUT' | 'EAGAIN' | 'EROFS' | 'ERANGE' | 'EMFILE' | 'ENFILE' | (string & {});

/** Optional details of a DmaPoolError; native failures fill errno, syscall and path. */
export interface DmaPoolErrorDetails {
  /** One line saying how to fix it (never part of `message`). */
  hint?: string;
  /** The errno value, when the error comes from a syscall. */
  errno?: number;
  /** The syscall or operation that failed ("ioctl", "mmap", "open", …). */
  syscall?: string;
  /** The file or ioctl involved. */
  path?: string;
  /** The underlying error, when one was wrapped. */
  cause?: unknown;
}

export class DmaPoolError extends Error {
  readonly code: DmaPoolErrorCode;
  readonly hint?: string;
  readonly errno?: number;
  readonly syscall?: string;
  readonly path?: string;

  /** `details` may be a hint string (the common case) or the full details object. */
  constructor(code: DmaPoolErrorCode, message: string, details?: string | DmaPoolErrorDetails) {
    const d: DmaPoolErrorDetails = typeof details === 'string' ? { hint: details } : details ?? {};
    super(`${code}: ${message}`, d.cause !== undefined ? { cause: d.cause } : undefined);
    this.name = 'DmaPoolError';
    this.code = code;
    if (d.hint) this.hint = d.hint;
    if (d.errno !== undefined) this.errno = d.errno;
    if (d.syscall !== undefined) this.syscall = d.syscall;
    if (d.path !== undefined) this.path = d.path;
  }
}

/** True for a DmaPoolError with one of `codes` (any code when none are given). */
export function isDmaPoolError(e: unknown, ...codes: string[]): e is DmaPoolError {
  return e instanceof DmaPoolError && (codes.length === 0 || codes.includes(e.code));
}

/** Node's fs errors (ErrnoException) → DmaPoolError, keeping the errno name and number. */
export function fromErrno(e: unknown, what: string, hint?: string): DmaPoolError {
  if (e instanceof DmaPoolError) return e;
  const n = e as NodeJS.ErrnoException;
  const code = typeof n?.code === 'string' && /^E[A-Z0-9]+$/.test(n.code) ? n.code : 'EIO';
  return new DmaPoolError(code, `${what}: ${n?.message ?? String(e)}`, {
    ...(hint ? { hint } : {}),
    ...(typeof n?.errno === 'number' ? { errno: Math.abs(n.errno) } : {}),
    ...(n?.syscall ? { syscall: n.syscall } : {}),
    ...(n?.path ? { path: n.path } : {}),
    cause: e,
  });
}

export function hex(n: number): string {
  return '0x' + n.toString(16);
}
