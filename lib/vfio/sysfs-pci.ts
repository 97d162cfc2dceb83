/** PCI access through sysfs (resourceN mmap, config file): UIO-bound or driverless devices, as root. */
import { DmaPoolError } from '../errors';
import { native } from '../native';
import { pciDevicePath } from '../pci';
import { HOST, SysRoot } from '../sysfs';
import { IrqInfo, IrqKind, Interrupts } from '../irq';
import { uioEnableInterrupts, uioIrqInfo } from './irq';
import { BarMapping, PciAccess } from './pci-access';

export class SysfsPciDevice extends PciAccess {
  private cfgFd: number;
  constructor(bdf: string, private readonly sys: SysRoot = HOST) {
    super(bdf);
    const n = native();
    this.cfgFd = n.open(sys.path(`${pciDevicePath(bdf)}/config`), n.constants.O_RDWR, 'run as root to write PCI config space');
  }

  protected mapBarImpl(index: number): BarMapping {
    const n = native();
    const p = this.sys.path(`${pciDevicePath(this.bdf)}/resource${index}`);
    const lines = (this.sys.read(`${pciDevicePath(this.bdf)}/resource`) ?? '').split('\n');
    const [start, end] = (lines[index] ?? '').split(/\s+/).map((x) => parseInt(x, 16));
    if (!(end > start)) throw new DmaPoolError('ENODEV', `${this.bdf}: BAR${index} is not implemented`);
    const fd = n.open(p, n.constants.O_RDWR | n.constants.O_SYNC, 'run as root to map PCI BARs through sysfs');
    try {
      const m = n.mmapFd(fd, end - start + 1, 0, n.constants.PROT_READ | n.constants.PROT_WRITE, n.constants.MAP_SHARED,
        `${this.bdf} resource${index}`);
      return m;
    } finally {
      n.close(fd);
    }
  }

  protected readConfigImpl(offset: number, length: number): Uint8Array {
    const b = new Uint8Array(length);
    native().pread(this.cfgFd, b, offset, `${this.bdf} config`);
    return b;
  }

  protected writeConfigImpl(offset: number, bytes: Uint8Array): void {
    native().pwrite(this.cfgFd, bytes, offset, `${this.bdf} config`);
  }

  /** INTx through /dev/uioN when the function is bound to a UIO driver (count 0 otherwise). */
  protected override irqInfoImpl(kind: IrqKind): IrqInfo {
    return uioIrqInfo(this.bdf, kind, this.sys);
  }

  protected override enableInterruptsImpl(kind: IrqKind, count: number | undefined, onClose: () => void): Interrupts {
    return uioEnableInterrupts(this.bdf, kind, count, this.sys, {
      read16: (off) => this.configRead16(off),
      write16: (off, v) => this.configWrite16(off, v),
    }, onClose);
  }

  protected closeImpl(): void {
    native().close(this.cfgFd);
  }
}
