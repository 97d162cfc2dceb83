/**
 * Errors thrown by the pool and the providers. `code` is an errno name so callers can
 * switch on it the way they would on a syscall failure.
 *
 * | code      | meaning                                                            |
 * |-----------|--------------------------------------------------------------------|
 * | EINVAL    | a bad argument (create rules; an address not at a block start)     |
 * | EFAULT    | a DMA address that no page of this pool contains ("bad dma")       |
 * | EALREADY  | the block is already free (double free)                            |
 * | EBADF     | the pool or device was destroyed/closed                            |
 * | EBUSY     | destroy/close while blocks are still allocated                     |
 * | ENOMEM    | the provider could not supply more DMA memory                      |
 * | ENODEV    | the requested provider or device is not available                  |
 */
export type DmaPoolErrorCode =
  | 'EINVAL' | 'EFAULT' | 'EALREADY' | 'EBADF' | 'EBUSY' | 'ENOMEM' | 'ENODEV' | 'EOVERFLOW';

export class DmaPoolError extends Error {
  readonly code: DmaPoolErrorCode;
  readonly hint?: string;
  constructor(code: DmaPoolErrorCode, message: string, hint?: string) {
    super(hint ? `${code}: ${message} (hint: ${hint})` : `${code}: ${message}`);
    this.name = 'DmaPoolError';
    this.code = code;
    if (hint) this.hint = hint;
  }
}

/** A failure raised by the native shim: an errno-named `code`, `syscall`, and a one-line `hint`. */
export interface NativeError extends Error {
  code: string;
  errno: number;
  syscall: string;
  path?: string;
  hint?: string;
}

export function hex(n: number): string {
  return '0x' + n.toString(16);
}
