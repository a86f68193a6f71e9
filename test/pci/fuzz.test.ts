/**
 * A hostile guest against the PCI layer: random configuration-space writes (BARs moved anywhere, including on
 * top of each other and of other devices, MSI-X enabled/masked at random, PCI_CFG windows with random
 * geometry), random accesses to everything decoded in the PCI window and random virtio common-config writes
 * with ring addresses pointing anywhere. The VMM must never throw, never map a BAR over another device, and
 * only send MSIs the table holds.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openBlockBackend } from '../../lib/block/index.js';
import { Bus, type BusDevice } from '../../lib/machine/bus.js';
import { GuestMemory } from '../../lib/machine/guest-memory.js';
import { VirtioBlk } from '../../lib/virtio/blk/device.js';
import { VirtioRng } from '../../lib/virtio/rng/device.js';
import { VirtioPciBus } from '../../lib/virtio/pci/attach.js';
import { GuestAllocator } from '../virtio/driver.js';
import { ConfigPorts, MsiSpy, VirtioPciTestDriver } from './pci-driver.js';

function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
}

describe('PCI fuzz', () => {
  it.each([0xc0ffee, 1, 42, 0xdeadbeef])('survives 30k random config/BAR/ring/notify operations (seed %i)', async (seed) => {
    const dir = await mkdtemp(join(tmpdir(), 'nodevmm-pci-fuzz-'));
    try {
      const img = join(dir, 'd.img');
      await writeFile(img, new Uint8Array(256 * 1024));
      const backend = await openBlockBackend(img);
      const mem = GuestMemory.ofSize(4 << 20);
      const pio = new Bus('pio');
      const mmio = new Bus('mmio');
      // A neighbour the PCI BARs must never displace (like the IOAPIC).
      const neighbourHits: number[] = [];
      const neighbour: BusDevice = { read: () => 0x1234, write: (o) => { neighbourHits.push(o); } };
      mmio.register(0xe100_0000, 0x1000, neighbour, 'neighbour');
      const spy = new MsiSpy();
      const logs: string[] = [];
      const bus = new VirtioPciBus(pio, mmio, mem, spy, (m) => logs.push(m));
      bus.add(new VirtioBlk(backend), 'blk');
      bus.add(new VirtioRng(), 'rng');
      const cfg = new ConfigPorts(pio);
      const rnd = xorshift(seed);
      const sizes = [1, 2, 4] as const;
      const interesting = [0, 0xffffffff, 0xe000_0000, 0xe100_0000, 0xe000_4000, 0xfee0_0000, 0x8000_0000, 0x1000, 7];
      const value = (): number => (rnd() % 3 === 0 ? interesting[rnd() % interesting.length]! : rnd());
      const windowAddress = (): number => 0xe000_0000 + (rnd() % 0x20000);

      let repairs = 0;
      let drivers: VirtioPciTestDriver[] = [];
      const repair = (): void => {
        // A machine reset, then a well-behaved driver brings both devices up with MSI-X, so the random phase
        // that follows hits live queues and live interrupt state, not only dead registers.
        for (const t of bus.transports) t.reset();
        const alloc = new GuestAllocator(0x10000, mem.end);
        drivers = bus.transports.map((_, i) => new VirtioPciTestDriver(cfg, mmio, i + 1, mem, alloc));
        for (const d of drivers) d.init();
        repairs++;
      };
      for (let i = 0; i < 30_000; i++) {
        if (i % 600 === 0) repair();
        const op = rnd() % 8;
        const size = sizes[rnd() % 3]!;
        const t = bus.transports[rnd() % 2]!;
        const slot = bus.transports.indexOf(t) + 1;
        const bar4 = t.pci.barMapping(4);
        const bar1 = t.pci.barMapping(1);
        if (op === 0) cfg.write(rnd() % 16 === 0 ? rnd() % 4 : slot, rnd() % 256, size, value());
        else if (op === 1) cfg.read(rnd() % 4, rnd() % 256, size);
        else if (op === 2) mmio.write(rnd() % 4 === 0 ? windowAddress() : (bar4 ?? 0xe000_0000) + (rnd() % 0x4000), size, value());
        else if (op === 3) mmio.read((bar4 ?? 0xe000_0000) + (rnd() % 0x4000), size);
        else if (op === 4 && bar1 !== undefined) mmio.write(bar1 + (rnd() % 0x40), size, value()); // MSI-X table
        else if (op === 5) {
          // Garbage in the rings: descriptors and avail entries pointing anywhere.
          const q = drivers[slot - 1]?.queues[0];
          if (q) mem.writeU32(q.desc + 4 * (rnd() % (4 * q.size)), value());
          if (q) mem.writeU16(q.avail + 2, rnd() & 0xffff);
        } else if (bar4 !== undefined) mmio.write(bar4 + 0x3000, 2, 0); // notify queue 0
        if (i % 200 === 0) await new Promise((r) => setImmediate(r)); // let async block I/O complete
      }
      console.log(`[pci fuzz seed ${seed}] ${repairs} resets, ${spy.messages.length} MSIs sent, ${logs.length} log lines, device status ${bus.transports.map((t) => t.core.status).join('/')}, ` +
        `BAR4 at ${bus.transports.map((t) => t.pci.barMapping(4)?.toString(16) ?? 'unmapped').join('/')}`);
      // The neighbour kept its range: nothing was ever mapped over it.
      expect(mmio.find(0xe100_0000)?.name).toBe('neighbour');
      // Every MSI sent had an address and data that some table entry could hold (32-bit data, sane address).
      for (const m of spy.messages) {
        expect(Number.isSafeInteger(m.address)).toBe(true);
        expect(m.data >>> 0).toBe(m.data);
      }
      // The bridge still answers and the devices can be reset to a clean state.
      expect(cfg.read(0, 0, 4)).toBe(0x0008_1b36);
      for (const t of bus.transports) t.reset();
      expect(bus.transports.map((t) => [t.core.status, t.pci.memoryEnabled, t.pci.barMapping(4)])).toEqual([[0, true, 0xe000_0000], [0, true, 0xe000_8000]]);
      bus.detach();
      await backend.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
