/**
 * Interrupt back ends of the PCI handles: VFIO (VFIO_DEVICE_GET_IRQ_INFO, VFIO_DEVICE_SET_IRQS
 * with one eventfd per vector; INTx unmask through VFIO_IRQ_SET_ACTION_UNMASK) and UIO
 * (/dev/uioN: the read count, re-enable by irqcontrol or, for uio_pci_generic, which has none,
 * by clearing the PCI INTx-disable bit its interrupt handler set).
 */
import { DmaPoolError } from '../errors';
import { InterruptSet, IrqInfo, IrqKind, makeVectors } from '../irq';
import { native } from '../native';
import { pciDevicePath, uioDevices } from '../pci';
import { SysRoot } from '../sysfs';
import * as u from './uapi';

export const VFIO_DEVICE_GET_IRQ_INFO = u.ioc(0, ';', 109, 0);
export const VFIO_DEVICE_SET_IRQS = u.ioc(0, ';', 110, 0);
export const VFIO_PCI_INTX_IRQ_INDEX = 0;
export const VFIO_PCI_MSI_IRQ_INDEX = 1;
export const VFIO_PCI_MSIX_IRQ_INDEX = 2;
export const VFIO_IRQ_INFO_EVENTFD = 1;
export const VFIO_IRQ_INFO_MASKABLE = 2;
export const VFIO_IRQ_INFO_AUTOMASKED = 4;
export const VFIO_IRQ_INFO_NORESIZE = 8;
export const VFIO_IRQ_SET_ACTION_MASK = 1 << 3;
export const VFIO_IRQ_SET_ACTION_UNMASK = 1 << 4;
export const VFIO_IRQ_SET_ACTION_TRIGGER = 1 << 5;

export const PCI_COMMAND_INTX_DISABLE = 0x400;

const INDEX: Record<IrqKind, number> = { intx: VFIO_PCI_INTX_IRQ_INDEX, msi: VFIO_PCI_MSI_IRQ_INDEX, msix: VFIO_PCI_MSIX_IRQ_INDEX };

/** VFIO_DEVICE_GET_IRQ_INFO for `kind` on a VFIO device descriptor. */
export function vfioIrqInfo(deviceFd: number, kind: IrqKind): IrqInfo {
  const s = u.struct(16);
  s.view.setUint32(8, INDEX[kind], true);
  native().ioctl(deviceFd, VFIO_DEVICE_GET_IRQ_INFO, s.bytes, `VFIO_DEVICE_GET_IRQ_INFO ${kind}`);
  return { flags: s.view.getUint32(4, true), count: s.view.getUint32(12, true) };
}

function checkCount(bdf: string, kind: IrqKind, info: IrqInfo, count: number | undefined): number {
  const n = count ?? (kind === 'intx' ? 1 : info.count);
  if (info.count === 0)
    throw new DmaPoolError('ENODEV', `${bdf} has no ${kind.toUpperCase()} interrupt`,
      kind === 'msix' ? 'use msi or intx' : kind === 'msi' ? 'use msix or intx' : undefined);
  if (!Number.isInteger(n) || n < 1 || n > info.count)
    throw new DmaPoolError('EINVAL', `${bdf}: ${kind} vector count must be an integer in [1, ${info.count}], got ${String(count)}`);
  return n;
}

/**
 * VFIO_DEVICE_SET_IRQS: `count` eventfds as the triggers of `kind` vectors 0..count-1. close()
 * disables the index (DATA_NONE, count 0), then closes the eventfds.
 */
export function vfioEnableInterrupts(bdf: string, deviceFd: number, kind: IrqKind, count: number | undefined,
  onClose: () => void): InterruptSet {
  const n = native();
  const info = vfioIrqInfo(deviceFd, kind);
  const num = checkCount(bdf, kind, info, count);
  if (!(info.flags & VFIO_IRQ_INFO_EVENTFD))
    throw new DmaPoolError('EOPNOTSUPP', `${bdf}: ${kind} cannot signal an eventfd`);
  const what = `${bdf} ${kind}`;
  const vectors = makeVectors(what, num, (cb) => n.irqCreate(cb));
  const index = INDEX[kind];
  try {
    n.vfioSetIrqs(deviceFd, index, VFIO_IRQ_SET_ACTION_TRIGGER, 0, num, vectors.map((v) => v.id));
  } catch (e) {
    for (const v of vectors) v.close();
    const err = e as DmaPoolError;
    if (err instanceof DmaPoolError && err.code === 'EINVAL' && err.syscall === 'ioctl' && !err.hint)
      throw new DmaPoolError(err.code, err.message, { errno: err.errno, syscall: err.syscall, path: err.path, cause: e,
        hint: 'another interrupt kind is enabled on this device (VFIO allows one at a time), or the vectors cannot be allocated' });
    throw e;
  }
  return new InterruptSet(kind, vectors, {
    unmask: () => {
      if (kind === 'intx') n.vfioSetIrqs(deviceFd, index, VFIO_IRQ_SET_ACTION_UNMASK, 0, 1);
    },
    disable: () => n.vfioSetIrqs(deviceFd, index, VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0),
  }, what, onClose);
}

/** The UIO device (uioN) of a function bound to a UIO driver, or undefined. */
export function uioName(bdf: string, sys: SysRoot): string | undefined {
  return uioDevices(bdf, sys)[0];
}

/** INTx through UIO: count 1 when the function has a uioN device, 0 otherwise (UIO has no MSI). */
export function uioIrqInfo(bdf: string, kind: IrqKind, sys: SysRoot): IrqInfo {
  return { count: kind === 'intx' && uioName(bdf, sys) ? 1 : 0, flags: 0 };
}

/**
 * INTx through /dev/uioN. `config` reads and writes the function's command register (for
 * uio_pci_generic, which re-enables by the INTx-disable bit rather than irqcontrol).
 */
export function uioEnableInterrupts(bdf: string, kind: IrqKind, count: number | undefined, sys: SysRoot,
  config: { read16(off: number): number; write16(off: number, v: number): void }, onClose: () => void): InterruptSet {
  const info = uioIrqInfo(bdf, kind, sys);
  if (kind !== 'intx')
    throw new DmaPoolError('ENODEV', `${bdf}: UIO delivers INTx only, not ${kind.toUpperCase()}`, 'bind the function to vfio-pci for MSI/MSI-X');
  if (info.count === 0)
    throw new DmaPoolError('ENODEV', `${bdf} has no UIO device (uioN)`, `bind it to uio_pci_generic: dmapool bind ${bdf} --driver uio_pci_generic`);
  checkCount(bdf, kind, info, count);
  const name = uioName(bdf, sys)!;
  const n = native();
  // the count before open: a read returns the cumulative count, so deltas start from here
  const before = Number((sys.read(`${pciDevicePath(bdf)}/uio/${name}/event`) ?? '0').trim()) >>> 0;
  const fd = n.open(sys.path(`/dev/${name}`), n.constants.O_RDWR | n.constants.O_NONBLOCK,
    `run as root or give this user access to /dev/${name}`);
  const what = `${bdf} ${name} intx`;
  let vectors;
  try {
    vectors = makeVectors(what, 1, (cb) => n.irqAdoptUio(fd, before, cb));
  } catch (e) {
    try { n.close(fd); } catch { /* adopted or closed */ }
    throw e;
  }
  const id = vectors[0].id;
  // irqcontrol when the driver has one; uio_pci_generic has none (ENOSYS): the INTx-disable bit
  let viaConfig = false;
  const control = (on: boolean): void => {
    if (!viaConfig) {
      try {
        n.irqUioControl(id, on);
        return;
      } catch (e) {
        if ((e as DmaPoolError).code !== 'ENOSYS') throw e;
        viaConfig = true;
      }
    }
    const cmd = config.read16(0x04);
    const next = on ? cmd & ~PCI_COMMAND_INTX_DISABLE : cmd | PCI_COMMAND_INTX_DISABLE;
    if (next !== cmd) config.write16(0x04, next);
  };
  try {
    control(true);
  } catch (e) {
    vectors[0].close();
    throw e;
  }
  return new InterruptSet('intx', vectors, { unmask: () => control(true), disable: () => control(false) }, what, onClose);
}
