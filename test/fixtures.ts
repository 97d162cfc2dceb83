/** Fixture sysfs/procfs/devfs trees for tests of code that reads them (a test-only root prefix). */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SysRoot } from '../lib/sysfs';

export interface FixturePci {
  bdf: string;
  vendor?: string;
  device?: string;
  cls?: string;
  driver?: string;
  group?: number;
}

export class Fixture {
  readonly root: string;
  readonly sys: SysRoot;
  constructor() {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), 'dmapool-fx-'));
    this.sys = new SysRoot(this.root);
  }

  file(p: string, content: string | Buffer): this {
    const f = path.join(this.root, p);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, content);
    return this;
  }

  link(p: string, target: string): this {
    const f = path.join(this.root, p);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.rmSync(f, { force: true });
    fs.symlinkSync(target, f);
    return this;
  }

  dir(p: string): this {
    fs.mkdirSync(path.join(this.root, p), { recursive: true });
    return this;
  }

  /** A PCI function with its identity files, driver link and IOMMU group. */
  pci(d: FixturePci): this {
    const p = `/sys/bus/pci/devices/${d.bdf}`;
    this.file(`${p}/vendor`, `0x${d.vendor ?? '1234'}\n`).file(`${p}/device`, `0x${d.device ?? '11e8'}\n`)
      .file(`${p}/class`, `${d.cls ?? '0x00ff00'}\n`).file(`${p}/driver_override`, '(null)\n')
      .file(`${p}/config`, Buffer.alloc(256))
      .file(`${p}/resource`, '0x00000000fea00000 0x00000000feafffff 0x0000000000040200\n');
    if (d.driver) {
      this.dir(`/sys/bus/pci/drivers/${d.driver}`);
      this.link(`${p}/driver`, `../../drivers/${d.driver}`);
    }
    if (d.group !== undefined) {
      this.dir(`/sys/kernel/iommu_groups/${d.group}/devices`);
      this.link(`${p}/iommu_group`, `../../../../kernel/iommu_groups/${d.group}`);
      this.link(`/sys/kernel/iommu_groups/${d.group}/devices/${d.bdf}`, `../../../../bus/pci/devices/${d.bdf}`);
    }
    return this;
  }

  /** A PCI ID database (the file lspci reads) where a distribution keeps it. */
  pciIds(content: string, at: '/usr/share/misc/pci.ids' | '/usr/share/hwdata/pci.ids' | '/usr/share/pci.ids' = '/usr/share/misc/pci.ids'): this {
    return this.file(at, content);
  }

  /**
   * A disk below a PCI function (`rel`: the path between them, e.g. 'virtio0/block',
   * 'nvme/nvme0', 'host0/target0:0:0/0:0:0:0/block') with its partitions, numbered from `devNo`
   * (major:minor), each linked from /sys/class/block like the kernel does.
   */
  disk(bdf: string, rel: string, name: string, devNo: string, partitions: string[] = []): this {
    const p = `/sys/bus/pci/devices/${bdf}/${rel}/${name}`;
    const [major, minor] = devNo.split(':').map(Number);
    [name, ...partitions].forEach((n, i) => {
      const q = i === 0 ? p : `${p}/${n}`;
      this.file(`${q}/dev`, `${major}:${minor + i}\n`).link(`/sys/class/block/${n}`, `../..${q.slice('/sys'.length)}`);
    });
    return this;
  }

  /** A network interface below a PCI function (`rel` e.g. 'net' or 'virtio1/net'), linked from /sys/class/net. */
  netif(bdf: string, rel: string, name: string, operstate: 'up' | 'down' | 'unknown', flags = operstate === 'up' ? '0x1003' : '0x1002'): this {
    const p = `/sys/bus/pci/devices/${bdf}/${rel}/${name}`;
    return this.file(`${p}/operstate`, `${operstate}\n`).file(`${p}/flags`, `${flags}\n`)
      .link(`/sys/class/net/${name}`, `../..${p.slice('/sys'.length)}`);
  }

  /** One more line of /proc/self/mountinfo: the filesystem on device `devNo` (major:minor) at `target`. */
  mount(devNo: string, source: string, target: string, fstype = 'ext4'): this {
    const f = path.join(this.root, '/proc/self/mountinfo');
    const old = fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '';
    const id = 20 + old.split('\n').length;
    return this.file('/proc/self/mountinfo', `${old}${id} 1 ${devNo} / ${target} rw,relatime shared:${id} - ${fstype} ${source} rw\n`);
  }

  cleanup(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}
