import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../lib/machine/guest-memory.js';
import { VirtioRng } from '../../lib/virtio/rng/device.js';
import { MMIO, VirtioMmioTransport } from '../../lib/virtio/mmio.js';
import { GuestAllocator, RecordingIrq, TestDriver } from './driver.js';

function rngRig(options: ConstructorParameters<typeof VirtioRng>[0] = {}) {
  const mem = GuestMemory.ofSize(4 << 20);
  const irq = new RecordingIrq();
  const transport = new VirtioMmioTransport(new VirtioRng(options), mem, irq, { log: () => {} });
  const driver = new TestDriver(transport, mem, irq, new GuestAllocator(0x1000, mem.end));
  driver.init();
  return { mem, irq, transport, driver };
}

describe('virtio-rng', () => {
  it('is device 4 with one queue', () => {
    const { driver } = rngRig();
    expect(driver.reg(MMIO.DeviceID)).toBe(4);
    expect(driver.queues.length).toBe(1);
  });

  it('fills writable buffers with fresh random bytes and raises the interrupt', async () => {
    const { mem, irq, driver } = rngRig();
    const a = driver.alloc.alloc(4096);
    const b = driver.alloc.alloc(4096);
    const u1 = await driver.run(0, [{ addr: a, len: 4096, write: true }]);
    const u2 = await driver.run(0, [{ addr: b, len: 1000, write: true }, { addr: b + 1000, len: 3096, write: true }]);
    expect(u1.len).toBe(4096);
    expect(u2.len).toBe(4096);
    const x = mem.read(a, 4096);
    const y = mem.read(b, 4096);
    expect(x.some((v) => v !== 0)).toBe(true);
    expect(y.some((v) => v !== 0)).toBe(true);
    expect(Buffer.from(x).equals(Buffer.from(y))).toBe(false);
    // Roughly uniform: every byte value should show up in 8 KiB of random data with overwhelming probability.
    const seen = new Set([...x, ...y]);
    expect(seen.size).toBeGreaterThan(200);
    expect(irq.raises).toBeGreaterThan(0);
    expect(driver.ackInterrupt() & 1).toBe(1);
    expect(irq.level).toBe(false);
  });

  it('caps the bytes supplied per request and reports the count in the used length', async () => {
    const { mem, driver } = rngRig({ maxBytesPerRequest: 100 });
    const a = driver.alloc.alloc(4096);
    mem.fill(a, 4096, 0);
    const u = await driver.run(0, [{ addr: a, len: 4096, write: true }]);
    expect(u.len).toBe(100);
    expect(mem.read(a + 100, 3996).every((v) => v === 0)).toBe(true);
  });
});

describe('split ring index wrap-around', () => {
  it('keeps working past 65536 requests (16-bit avail/used indexes wrap)', { timeout: 120_000 }, async () => {
    const { mem, driver } = rngRig({ queueSize: 256 });
    const q = driver.queues[0]!;
    const buf = driver.alloc.alloc(256 * 8);
    let done = 0;
    const total = 70_000;
    while (done < total) {
      const batch = Math.min(256, total - done);
      const heads = new Set<number>();
      for (let i = 0; i < batch; i++) heads.add(q.add([{ addr: buf + 8 * i, len: 8, write: true }]));
      driver.notify(0);
      for (let i = 0; i < batch; i++) {
        const u = await driver.waitUsed(0);
        expect(heads.delete(u.id)).toBe(true);
        expect(u.len).toBe(8);
        q.recycle(u.id);
      }
      done += batch;
    }
    expect(q.availIdx).toBe(total & 0xffff);
    expect(q.usedIdx()).toBe(total & 0xffff);
    expect(mem.read(buf, 8).some((v) => v !== 0)).toBe(true);
  });
});
