/**
 * virtio-mmio devices from the machine configuration: disks (raw or qcow2, detected), an entropy source and
 * network interfaces, each in a 4 KiB slot of the MMIO device window with its own ISA IRQ, announced to Linux
 * with `virtio_mmio.device=` on the command line.
 */
import type { AcceleratorFastPaths } from '../accel/accelerator.js';
import { openBlockBackend } from '../block/index.js';
import type { NetBackend } from '../net/backend.js';
import { type CreateNetBackendOptions, createNetBackend as createBackend } from '../net/create.js';
import { NetSpecError, parseNetSpec } from '../net/spec.js';
import { VirtioBlk, VirtioMmioTransport, VirtioRng, virtioMmioCmdline, VIRTIO_MMIO_SIZE } from '../virtio/index.js';
import type { VirtioDevice } from '../virtio/device.js';
import { defaultMac, formatMac, parseMac, randomMac, VirtioNet } from '../virtio/net/index.js';
import type { VirtioCore } from '../virtio/core.js';
import { VirtioPciBus } from '../virtio/pci/attach.js';
import type { Bus } from './bus.js';
import type { DiskConfig } from './config.js';
import { ConfigError } from './config.js';
import type { GuestMemory } from './guest-memory.js';
import { type InterruptController, irqLine, type MsiSink } from './irq.js';
import { MMIO_DEVICE_SLOT_SIZE, MMIO_DEVICE_WINDOW_END, MMIO_DEVICE_WINDOW_START } from './layout.js';

/**
 * ISA IRQs no legacy device of ours uses (0 PIT, 1 keyboard, 2 cascade, 3 COM2, 4 COM1, 8 RTC, 12 mouse, 13 FPU).
 * Only ISA IRQs: the MP table announces IOAPIC pins 0-15, so these work with the PIC and the IOAPIC alike.
 */
export const VIRTIO_IRQS: readonly number[] = [5, 6, 7, 9, 10, 11, 14, 15];

export interface VirtioDeviceSpecs {
  disks: readonly DiskConfig[];
  rng: boolean;
  nets: readonly string[];
  /** Options every `user` net gets beyond its spec (e.g. dnsServers: where 10.0.2.3 forwards queries). */
  userNet?: CreateNetBackendOptions['user'];
  /** mmio (default): virtio-mmio slots announced on the command line; pci: modern virtio-pci on PCI bus 0. */
  transport?: 'mmio' | 'pci';
}

/** What the machine needs from a transport: its core, a full reset, and how many notifications took the fast path. */
export interface VirtioTransportHandle {
  readonly core: VirtioCore;
  reset?(): void;
  /** Queue notifications that arrived through the accelerator fast path instead of the bus. */
  readonly fastNotifications?: number;
}

/** What the transports need from the machine beyond RAM and the MMIO bus. */
export interface TransportResources {
  /** PCI: the host bridge's config ports. */
  pio: Bus;
  /** PCI: where MSI-X messages go. */
  msi: MsiSink | undefined;
  /**
   * Accelerator.fastPaths (KVM): queue notifications as ioeventfds for both transports (virtio-mmio: QueueNotify
   * with datamatch = queue index), and irqfd MSIs for PCI. virtio-mmio interrupts stay on the IRQ line.
   */
  fastPaths?: AcceleratorFastPaths | undefined;
}

export interface AttachedVirtio {
  transports: VirtioTransportHandle[];
  /** `virtio_mmio.device=...` entries, space separated. */
  cmdline: string;
  close(): Promise<void>;
}

export async function attachVirtioDevices(
  specs: VirtioDeviceSpecs,
  memory: GuestMemory,
  mmio: Bus,
  interrupts: InterruptController,
  log: (message: string) => void,
  resources?: TransportResources,
): Promise<AttachedVirtio> {
  const closers: (() => Promise<void>)[] = [];
  const transports: VirtioTransportHandle[] = [];
  let pciBus: VirtioPciBus | undefined;
  if (specs.transport === 'pci') {
    if (!resources?.msi) throw new ConfigError('virtioTransport', 'pci needs an accelerator that delivers MSIs');
    pciBus = new VirtioPciBus(resources.pio, mmio, memory, resources.msi, log, resources.fastPaths, interrupts);
    const bus = pciBus;
    closers.push(async () => bus.detach());
  }
  const mmioTransports: VirtioMmioTransport[] = [];
  // First closer: the ioeventfds go before any backend closes, so a last notification meets an open backend.
  closers.push(async () => { for (const t of mmioTransports) t.closeFastPaths(); });
  const cmdline: string[] = [];
  const closeAll = async (): Promise<void> => {
    for (const c of closers.splice(0)) await c().catch(() => {});
  };

  const add = (device: VirtioDevice, name: string, field: string): void => {
    if (pciBus) {
      transports.push(pciBus.add(device, name));
      return;
    }
    const slot = transports.length;
    const irq = VIRTIO_IRQS[slot];
    const base = MMIO_DEVICE_WINDOW_START + slot * MMIO_DEVICE_SLOT_SIZE;
    if (irq === undefined || base + MMIO_DEVICE_SLOT_SIZE > MMIO_DEVICE_WINDOW_END) {
      throw new ConfigError(field, `too many virtio devices: at most ${VIRTIO_IRQS.length} are supported`);
    }
    const transport = new VirtioMmioTransport(device, memory, irqLine(interrupts, irq), { log, name });
    mmio.register(base, VIRTIO_MMIO_SIZE, transport, name);
    const fastPaths = resources?.fastPaths;
    if (fastPaths) transport.enableNotifyFastPath(fastPaths, base);
    mmioTransports.push(transport);
    transports.push(transport);
    cmdline.push(virtioMmioCmdline(base, irq, VIRTIO_MMIO_SIZE));
  };

  try {
    for (const [i, disk] of specs.disks.entries()) {
      const backend = await openBlockBackend(disk.path, { readOnly: disk.readOnly });
      closers.push(() => backend.close());
      add(new VirtioBlk(backend, { readOnly: disk.readOnly }), `virtio-blk${i} (${disk.path})`, `disks[${i}]`);
    }
    if (specs.rng) add(new VirtioRng(), 'virtio-rng', 'rng');
    for (const [i, text] of specs.nets.entries()) {
      const nic = await createNetInterface(text, i, log, specs.userNet);
      closers.push(() => nic.backend.close());
      add(new VirtioNet(nic.backend, { mac: nic.mac }), `virtio-net${i}`, `nets[${i}]`);
    }
  } catch (e) {
    await closeAll();
    throw e;
  }
  return { transports, cmdline: cmdline.join(' '), close: closeAll };
}

interface NetInterface {
  backend: NetBackend;
  mac: Uint8Array;
}

/**
 * Any --net kind (user, tap, socket) through lib/net, and the NIC's MAC; setup failures (EPERM on a TAP, a
 * refused connect) name the field.
 */
async function createNetInterface(
  text: string, index: number, log: (message: string) => void, user: CreateNetBackendOptions['user'],
): Promise<NetInterface> {
  const field = `nets[${index}]`;
  let spec;
  try {
    spec = parseNetSpec(text);
  } catch (e) {
    if (e instanceof NetSpecError) throw new ConfigError(field, e.message);
    throw e;
  }
  let backend;
  try {
    backend = await createBackend(spec, { log, ...(user ? { user } : {}) });
  } catch (e) {
    throw new ConfigError(field, `"${text}": ${e instanceof Error ? e.message : String(e)}`);
  }
  if (spec.mac !== undefined) return { backend, mac: parseMac(spec.mac) };
  // A user-mode network is private to this VM, so the fixed default is safe there. TAP and socket links can
  // join other VMs, and two NICs with one address on a segment break each other: pick a random one.
  if (spec.kind === 'user') return { backend, mac: defaultMac(index) };
  const mac = randomMac();
  log(`${field}: no mac= given, using ${formatMac(mac)} (random; set mac= for a stable address)`);
  return { backend, mac };
}
