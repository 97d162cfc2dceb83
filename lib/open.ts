/** openDevice(spec): picks and opens a provider of coherent memory. */
import { Device } from './device';
import { DmaPoolError } from './errors';
import { SimOptions, SimProvider } from './providers/sim';
import { UDmaBufOptions, UDmaBufProvider } from './providers/u-dma-buf';
import { udmabufAvailable, UdmabufProvider } from './providers/udmabuf';
import { PhysicalOptions } from './providers/physical';
import { UioProvider } from './providers/uio';
import { VfioProvider, VfioProviderOptions } from './providers/vfio';
import { HOST, SysRoot } from './sysfs';
import { IOMMU_CHOICES } from './vfio/iommu';

export interface OpenOptions extends SimOptions, PhysicalOptions, VfioProviderOptions, UDmaBufOptions {
  /**
   * Let `auto` fall back to `sim` (fake IOVAs, NOT device-visible) when no device-visible
   * provider works; `device.reason` then says so. Default false: `auto` throws instead.
   */
  allowSim?: boolean;
}

const isBool = (v: unknown) => typeof v === 'boolean';
const isCount = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;

/** Every option any provider takes (one list: the compiler insists it covers OpenOptions). */
const OPTIONS: { [K in keyof OpenOptions]-?: [string, (v: unknown) => boolean] } = {
  slabSize: ['a positive integer', (v) => isCount(v) && (v as number) > 0],
  lock: ['a boolean', isBool],
  iovaBase: ['a non-negative integer', isCount],
  iovaFloor: ['a non-negative integer', isCount],
  hugepages: ['a boolean', isBool],
  allowSim: ['a boolean', isBool],
  sys: ['a SysRoot', (v) => v instanceof SysRoot],
  iommu: [`one of ${IOMMU_CHOICES.map((c) => `'${c}'`).join(', ')}`, (v) => (IOMMU_CHOICES as readonly unknown[]).includes(v)],
};

/**
 * The device specs openDevice() understands, as template literal types (completion, and a type
 * for a driver's own configuration). `Device.spec` is always one of them: the spec a device was
 * opened with, or for `auto` the one it resolved to.
 * - `'sim'`: no device, fake IOVAs, never device-visible;
 * - `'auto'`: vfio:$DMAPOOL_DEVICE, else udmabuf (ENODEV when neither; sim only with allowSim);
 * - `` `vfio:${bdf}` ``: one PCI function or several, comma-separated (`vfio:0000:85:00.0,0000:85:00.1`);
 * - `` `uio:${bdf}` ``: a UIO-bound function, physical addresses;
 * - `'udmabuf'`: memfd + /dev/udmabuf, physical addresses;
 * - `` `u-dma-buf:${name}` ``: ikwzm's u-dma-buf reserved buffer, e.g. `u-dma-buf:udmabuf0`.
 */
export type DeviceSpec =
  | 'sim' | 'auto' | 'udmabuf' | `vfio:${string}` | `uio:${string}` | `u-dma-buf:${string}`;

const SPECS = "'sim', 'auto', 'vfio:<BDF>[,<BDF>…]', 'uio:<BDF>', 'udmabuf' or 'u-dma-buf:<name>'";

/** EINVAL for anything but undefined or a plain object of known options with the right types. */
function checkOptions(opts: unknown): void {
  if (opts === undefined) return;
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts))
    throw new DmaPoolError('EINVAL', `openDevice: options must be an object, got ${opts === null ? 'null' : Array.isArray(opts) ? 'an array' : typeof opts}`);
  for (const [k, v] of Object.entries(opts)) {
    if (!Object.hasOwn(OPTIONS, k))
      throw new DmaPoolError('EINVAL', `openDevice: unknown option '${k}'`, `options are ${Object.keys(OPTIONS).join(', ')}`);
    const rule = OPTIONS[k as keyof OpenOptions];
    if (v !== undefined && !rule[1](v))
      throw new DmaPoolError('EINVAL', `openDevice: option ${k} must be ${rule[0]}, got ${typeof v === 'string' ? `'${v}'` : String(v)}`);
  }
}

/**
 * Opens a device by spec:
 * - `sim` — no device; fake IOVAs; never device-visible.
 * - `vfio:0000:85:00.0[,…]` — VFIO; the devices share one IOMMU context: iommufd (one IOAS)
 *   when /dev/iommu and their VFIO cdevs exist, else the type1v2 container; forced by
 *   `{ iommu: 'iommufd' | 'type1' }` or DMAPOOL_VFIO_IOMMU.
 * - `uio:0000:85:00.0` — physical memory (pagemap) for a device without IOMMU translation.
 * - `udmabuf` — memfd + /dev/udmabuf, physical addresses.
 * - `u-dma-buf:udmabuf0` — ikwzm's u-dma-buf reserved buffer.
 * - `auto` (the default) — vfio:$DMAPOOL_DEVICE when set, else udmabuf when /dev/udmabuf exists;
 *   ENODEV when neither is there, and a failing provider's own error (no fallback). Only with
 *   `allowSim: true` does it fall back to sim. `device.reason` says which and why.
 *
 * `spec` is typed as {@link DeviceSpec} for completion but accepts any string — specs often come
 * from a command line or an environment variable — and is checked at run time: EINVAL for an
 * unknown spec or a missing argument, EINVAL for unknown options or option types.
 */
export function openDevice(spec: DeviceSpec | (string & {}) = 'auto', opts: OpenOptions = {}): Device {
  if (typeof spec !== 'string')
    throw new DmaPoolError('EINVAL', `openDevice: spec must be a string, got ${spec === null ? 'null' : typeof spec}`, `use ${SPECS}`);
  checkOptions(opts);
  const { allowSim = false, ...popts } = opts;
  const [kind, arg] = splitSpec(spec);
  switch (kind) {
    case 'sim': return new Device('sim', new SimProvider(popts));
    case 'vfio': {
      if (!arg) throw new DmaPoolError('EINVAL', `'${spec}': vfio needs a PCI address, e.g. vfio:0000:85:00.0`);
      return new Device(spec as DeviceSpec, new VfioProvider(arg.split(','), popts));
    }
    case 'uio': {
      if (!arg) throw new DmaPoolError('EINVAL', `'${spec}': uio needs a PCI address, e.g. uio:0000:85:00.0`);
      return new Device(spec as DeviceSpec, new UioProvider(arg, popts));
    }
    case 'udmabuf': return new Device('udmabuf', new UdmabufProvider(popts));
    case 'u-dma-buf': {
      if (!arg) throw new DmaPoolError('EINVAL', `'${spec}': u-dma-buf needs a device name, e.g. u-dma-buf:udmabuf0`);
      return new Device(spec as DeviceSpec, new UDmaBufProvider(arg, popts));
    }
    case 'auto': return openAuto(popts, allowSim);
    default:
      throw new DmaPoolError('EINVAL', `unknown device spec '${spec}'`, `use ${SPECS}`);
  }
}

const NOT_VISIBLE = 'fake IOVAs, NOT device-visible';

function openAuto(opts: Omit<OpenOptions, 'allowSim'>, allowSim: boolean): Device {
  const want = process.env.DMAPOOL_DEVICE;
  if (want) {
    const s = /^(vfio|uio|udmabuf|u-dma-buf|sim)(:|$)/.test(want) ? want : `vfio:${want}`;
    const d = openDevice(s, opts);
    return new Device(d.spec, d.provider, `auto: DMAPOOL_DEVICE=${want} → ${d.spec}${d.deviceVisible ? '' : ` (${NOT_VISIBLE})`}`);
  }
  let failure: string | undefined;
  if (udmabufAvailable(opts.sys ?? HOST)) {
    try {
      return new Device('udmabuf', new UdmabufProvider(opts), 'auto: DMAPOOL_DEVICE unset; /dev/udmabuf present → udmabuf');
    } catch (e) {
      if (!allowSim) throw e; // it exists but fails: its own error, never fake addresses
      failure = (e as Error).message;
    }
  }
  if (!allowSim)
    throw new DmaPoolError('ENODEV', 'auto: no device-visible memory: DMAPOOL_DEVICE is unset and /dev/udmabuf is missing',
      'run `dmapool doctor` to see what a provider needs, then set DMAPOOL_DEVICE=<vfio-pci-bound BDF> (or open \'vfio:<BDF>\', ' +
      '\'uio:<BDF>\', \'udmabuf\'); for tests without a device open \'sim\' or pass { allowSim: true }');
  return new Device('sim', new SimProvider(opts), failure
    ? `auto (allowSim): /dev/udmabuf present but unusable (${failure}); using sim (${NOT_VISIBLE})`
    : `auto (allowSim): DMAPOOL_DEVICE unset (set it to a vfio-pci-bound BDF) and no /dev/udmabuf; using sim (${NOT_VISIBLE})`);
}

function splitSpec(spec: string): [string, string] {
  const i = spec.indexOf(':');
  return i < 0 ? [spec, ''] : [spec.slice(0, i), spec.slice(i + 1)];
}
