/** Test-side virtio-net plumbing: an in-memory backend and a rig around TestDriver. */
import { GuestMemory } from '../../lib/machine/guest-memory.js';
import type { NetBackend } from '../../lib/net/backend.js';
import { VirtioNet, type VirtioNetOptions } from '../../lib/virtio/net/device.js';
import { VirtioMmioTransport } from '../../lib/virtio/mmio.js';
import { GuestAllocator, RecordingIrq, TestDriver, type InitOptions } from './driver.js';

/** Records what the device transmits; `inject` plays a frame arriving from the network. */
export class MemoryBackend implements NetBackend {
  sent: Uint8Array[] = [];
  closed = false;
  private cb: ((frame: Uint8Array) => void) | undefined;
  send(frame: Uint8Array): void {
    this.sent.push(frame);
  }
  onFrame(cb: (frame: Uint8Array) => void): void {
    this.cb = cb;
  }
  inject(frame: Uint8Array): void {
    this.cb?.(frame);
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

export interface NetRig {
  mem: GuestMemory;
  dev: VirtioNet;
  backend: MemoryBackend;
  transport: VirtioMmioTransport;
  driver: TestDriver;
  irq: RecordingIrq;
  logs: string[];
}

export function netRig(opts: VirtioNetOptions & InitOptions = {}): NetRig {
  const mem = GuestMemory.ofSize(16 << 20);
  const irq = new RecordingIrq();
  const logs: string[] = [];
  const backend = new MemoryBackend();
  const dev = new VirtioNet(backend, opts);
  const transport = new VirtioMmioTransport(dev, mem, irq, { log: (m) => logs.push(m) });
  const driver = new TestDriver(transport, mem, irq, new GuestAllocator(0x1000, mem.end));
  driver.init(opts);
  return { mem, dev, backend, transport, driver, irq, logs };
}

/** A frame of `length` bytes: broadcast destination, a source MAC, EtherType 0x88b5 (local experimental), pattern payload. */
export function testFrame(length: number, seed = 1): Uint8Array {
  const f = new Uint8Array(length);
  f.fill(0xff, 0, 6);
  f.set([0x52, 0x54, 0x00, 0xaa, 0xbb, seed & 0xff], 6);
  f[12] = 0x88;
  f[13] = 0xb5;
  for (let i = 14; i < length; i++) f[i] = (i * 7 + seed * 13) & 0xff;
  return f;
}

/** Let microtasks and immediates run (device delivery is deferred to the end of the current turn). */
export function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
