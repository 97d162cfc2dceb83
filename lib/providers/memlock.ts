/** RLIMIT_MEMLOCK pre-checks: pinned DMA memory counts against it unless CAP_IPC_LOCK. */
import { DmaPoolError } from '../errors';
import { native } from '../native';
import { HOST, SysRoot } from '../sysfs';

const CAP_IPC_LOCK = 14;

/** True when this process has CAP_IPC_LOCK in its effective set (then the limit does not apply). */
export function hasIpcLock(sys: SysRoot = HOST): boolean {
  const status = sys.read('/proc/self/status') ?? '';
  const m = /^CapEff:\s*([0-9a-f]+)/m.exec(status);
  if (!m) return false;
  return (BigInt('0x' + m[1]) >> BigInt(CAP_IPC_LOCK)) & 1n ? true : false;
}

/** How to raise RLIMIT_MEMLOCK to `bytes` (shell, systemd, limits.conf): the one fix text, shared with doctor. */
export function memlockFix(bytes: number): string {
  const kib = Math.ceil(bytes / 1024);
  return `ulimit -l ${kib} (or more; systemd: LimitMEMLOCK=${kib}K; /etc/security/limits.conf: <user> - memlock ${kib}), or run with CAP_IPC_LOCK`;
}

/** Throws ENOMEM with the exact `ulimit -l` needed when pinning `more` bytes would exceed the limit. */
export function checkMemlock(pinned: number, more: number, what: string, sys: SysRoot = HOST): void {
  if (hasIpcLock(sys)) return;
  const { soft } = native().getrlimitMemlock();
  if (pinned + more <= soft) return;
  throw new DmaPoolError('ENOMEM',
    `${what}: pinning ${pinned + more} bytes exceeds RLIMIT_MEMLOCK (${soft} bytes)`, memlockFix(pinned + more));
}
