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

/** Throws ENOMEM with the exact `ulimit -l` needed when pinning `more` bytes would exceed the limit. */
export function checkMemlock(pinned: number, more: number, what: string, sys: SysRoot = HOST): void {
  if (hasIpcLock(sys)) return;
  const { soft } = native().getrlimitMemlock();
  if (pinned + more <= soft) return;
  const needKiB = Math.ceil((pinned + more) / 1024);
  throw new DmaPoolError('ENOMEM',
    `${what}: pinning ${pinned + more} bytes exceeds RLIMIT_MEMLOCK (${soft} bytes)`,
    `ulimit -l ${needKiB} (or more; systemd: LimitMEMLOCK=${needKiB}K; /etc/security/limits.conf: <user> - memlock ${needKiB}), or run with CAP_IPC_LOCK`);
}
