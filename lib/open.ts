/** openDevice(spec): picks and opens a provider of coherent memory. */
import { Device } from './device';
import { DmaPoolError } from './errors';
import { SimOptions, SimProvider } from './providers/sim';
import { UDmaBufProvider } from './providers/u-dma-buf';
import { udmabufAvailable, UdmabufProvider } from './providers/udmabuf';
import { PhysicalOptions } from './providers/physical';
import { UioProvider } from './providers/uio';
import { VfioProvider } from './providers/vfio';
import { HOST } from './sysfs';

export interface OpenOptions extends SimOptions, PhysicalOptions {}

const SPECS = "'sim', 'auto', 'vfio:<BDF>[,<BDF>…]', 'uio:<BDF>', 'udmabuf' or 'u-dma-buf:<name>'";

/**
 * Opens a device by spec:
 * - `sim` — no device; fake IOVAs; never device-visible.
 * - `vfio:0000:85:00.0[,…]` — VFIO type1v2; the devices share one IOMMU container.
 * - `uio:0000:85:00.0` — physical memory (pagemap) for a device without IOMMU translation.
 * - `udmabuf` — memfd + /dev/udmabuf, physical addresses.
 * - `u-dma-buf:udmabuf0` — ikwzm's u-dma-buf reserved buffer.
 * - `auto` — vfio:$DMAPOOL_DEVICE when set, else udmabuf when /dev/udmabuf exists, else sim;
 *   `device.reason` says which and why.
 */
export function openDevice(spec = 'auto', opts: OpenOptions = {}): Device {
  const sys = opts.sys ?? HOST;
  const [kind, arg] = splitSpec(spec);
  switch (kind) {
    case 'sim': return new Device('sim', new SimProvider(opts));
    case 'vfio': {
      if (!arg) throw new DmaPoolError('EINVAL', `'${spec}': vfio needs a PCI address, e.g. vfio:0000:85:00.0`);
      return new Device(spec, new VfioProvider(arg.split(','), opts));
    }
    case 'uio': {
      if (!arg) throw new DmaPoolError('EINVAL', `'${spec}': uio needs a PCI address, e.g. uio:0000:85:00.0`);
      return new Device(spec, new UioProvider(arg, opts));
    }
    case 'udmabuf': return new Device('udmabuf', new UdmabufProvider(opts));
    case 'u-dma-buf': {
      if (!arg) throw new DmaPoolError('EINVAL', `'${spec}': u-dma-buf needs a device name, e.g. u-dma-buf:udmabuf0`);
      return new Device(spec, new UDmaBufProvider(arg, opts));
    }
    case 'auto': {
      const want = process.env.DMAPOOL_DEVICE;
      if (want) {
        const s = /^(vfio|uio|udmabuf|u-dma-buf|sim)(:|$)/.test(want) ? want : `vfio:${want}`;
        const d = openDevice(s, opts);
        return new Device(d.spec, d.provider, `auto: DMAPOOL_DEVICE=${want} → ${d.spec}`);
      }
      if (udmabufAvailable(sys)) {
        try {
          return new Device('udmabuf', new UdmabufProvider(opts), 'auto: DMAPOOL_DEVICE unset; /dev/udmabuf present → udmabuf');
        } catch (e) {
          return new Device('sim', new SimProvider(opts),
            `auto: /dev/udmabuf present but unusable (${(e as Error).message}); using sim (NOT device-visible)`);
        }
      }
      return new Device('sim', new SimProvider(opts),
        'auto: DMAPOOL_DEVICE unset (set it to a vfio-pci-bound BDF) and no /dev/udmabuf; using sim (NOT device-visible)');
    }
    default:
      throw new DmaPoolError('ENODEV', `unknown device spec '${spec}'`, `use ${SPECS}`);
  }
}

function splitSpec(spec: string): [string, string] {
  const i = spec.indexOf(':');
  return i < 0 ? [spec, ''] : [spec.slice(0, i), spec.slice(i + 1)];
}
