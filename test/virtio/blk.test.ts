import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeFallocate } from '../../lib/block/fallocate.js';
import { RawBackend } from '../../lib/block/raw.js';
import { BLK_CONFIG, BLK_F_DISCARD, BLK_F_FLUSH, BLK_F_RO, BLK_F_WRITE_ZEROES } from '../../lib/virtio/blk/constants.js';
import { VirtioBlk } from '../../lib/virtio/blk/device.js';
import { F_EVENT_IDX, F_INDIRECT_DESC, F_VERSION_1, STATUS_DEVICE_NEEDS_RESET, featureBit, hasFeature } from '../../lib/virtio/constants.js';
import { MMIO, virtioMmioCmdline } from '../../lib/virtio/mmio.js';
import { T_DISCARD, T_FLUSH, T_GET_ID, T_IN, T_OUT, T_WRITE_ZEROES, blkRequest, blkRig, pattern, segment } from './blk-helpers.js';

let dir: string;
const opened: RawBackend[] = [];
async function openRaw(path: string, options: { readOnly?: boolean } = {}): Promise<RawBackend> {
  const b = await RawBackend.open(path, options);
  opened.push(b);
  return b;
}
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodevmm-blk-'));
});
afterAll(async () => {
  for (const b of opened) await b.close();
  await rm(dir, { recursive: true, force: true });
});

async function image(name: string, bytes: Uint8Array): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, bytes);
  return p;
}

describe('virtio-blk over virtio-mmio with a raw file', () => {
  it('identifies itself and reports capacity and features', async () => {
    const path = await image('id.raw', new Uint8Array(1 << 20));
    const backend = await openRaw(path);
    const rig = blkRig(backend);
    expect(rig.driver.reg(MMIO.MagicValue)).toBe(0x74726976);
    expect(rig.driver.reg(MMIO.DeviceID)).toBe(2);
    const capLow = rig.transport.read(0x100, 4);
    const capHigh = rig.transport.read(0x104, 4);
    expect(capLow + capHigh * 2 ** 32).toBe(2048);
    expect(rig.transport.read(0x100 + 20, 4)).toBe(512); // blk_size
    const f = rig.driver.features;
    for (const bit of [F_VERSION_1, F_INDIRECT_DESC, F_EVENT_IDX, BLK_F_FLUSH, BLK_F_DISCARD, BLK_F_WRITE_ZEROES]) {
      expect(hasFeature(f, bit)).toBe(true);
    }
    expect(hasFeature(f, BLK_F_RO)).toBe(false);
  });

  it('reads, writes and flushes against the real file', async () => {
    const initial = pattern(1 << 20, 7);
    const path = await image('rw.raw', initial);
    const backend = await openRaw(path);
    const rig = blkRig(backend);
    const r = await blkRequest(rig, T_IN, 3, { inLength: 4096 });
    expect(r.status).toBe(0);
    expect(r.usedLen).toBe(4097);
    expect(Buffer.from(r.data).equals(Buffer.from(initial.subarray(3 * 512, 3 * 512 + 4096)))).toBe(true);

    const data = pattern(8192, 99);
    const w = await blkRequest(rig, T_OUT, 10, { out: data, split: true });
    expect(w.status).toBe(0);
    expect((await blkRequest(rig, T_FLUSH, 0)).status).toBe(0);
    const onDisk = await readFile(path);
    expect(onDisk.subarray(10 * 512, 10 * 512 + 8192).equals(Buffer.from(data))).toBe(true);
    expect(onDisk.subarray(0, 10 * 512).equals(Buffer.from(initial.subarray(0, 10 * 512)))).toBe(true);
    const back = await blkRequest(rig, T_IN, 10, { inLength: 8192, split: true });
    expect(Buffer.from(back.data).equals(Buffer.from(data))).toBe(true);
    expect(rig.irq.raises).toBeGreaterThan(0);
  });

  it('returns the serial for GET_ID', async () => {
    const path = await image('serial.raw', new Uint8Array(65536));
    const backend = await openRaw(path);
    const rig = blkRig(backend, { serial: 'nodevmm-disk-0001' });
    const r = await blkRequest(rig, T_GET_ID, 0, { inLength: 20 });
    expect(r.status).toBe(0);
    expect(Buffer.from(r.data).toString('latin1')).toBe('nodevmm-disk-0001\0\0\0');
  });

  it('write-zeroes zeroes the range on disk; discard succeeds; bad flags are UNSUPP', async () => {
    const initial = pattern(1 << 20, 3);
    const path = await image('wz.raw', initial);
    const backend = await openRaw(path);
    const rig = blkRig(backend);
    const seg = new Uint8Array([...segment(8, 16), ...segment(100, 1)]);
    expect((await blkRequest(rig, T_WRITE_ZEROES, 0, { out: seg })).status).toBe(0);
    const onDisk = await readFile(path);
    expect(onDisk.subarray(8 * 512, 24 * 512).every((b) => b === 0)).toBe(true);
    expect(onDisk.subarray(100 * 512, 101 * 512).every((b) => b === 0)).toBe(true);
    expect(onDisk.subarray(24 * 512, 100 * 512).equals(Buffer.from(initial.subarray(24 * 512, 100 * 512)))).toBe(true);
    expect((await blkRequest(rig, T_DISCARD, 0, { out: segment(0, 8) })).status).toBe(0);
    expect((await blkRequest(rig, T_DISCARD, 0, { out: segment(0, 8, 1) })).status).toBe(2);
    expect((await blkRequest(rig, T_WRITE_ZEROES, 0, { out: segment(2040, 16) })).status).toBe(1);
    // A payload far larger than the advertised segment limit is refused without copying it.
    expect((await blkRequest(rig, T_DISCARD, 0, { out: new Uint8Array(8 << 20) })).status).toBe(1);
  });

  const noFallocate = nativeFallocate() === null ? 'the addon has no fallocate()' : undefined;
  if (noFallocate) console.warn(`skipping the write-zeroes UNMAP test: ${noFallocate}`);
  it.skipIf(noFallocate !== undefined)('write-zeroes with UNMAP frees the range; without it the blocks stay allocated', async () => {
    const MiB = 1 << 20;
    const path = await image('wz-unmap.raw', pattern(16 * MiB, 7));
    const backend = await openRaw(path);
    expect(new VirtioBlk(backend).readConfig(BLK_CONFIG.writeZeroesMayUnmap, 1)).toBe(1);
    const rig = blkRig(backend);
    const allocated = async (): Promise<number> => (await stat(path)).blocks * 512;
    const before = await allocated();
    expect((await blkRequest(rig, T_WRITE_ZEROES, 0, { out: segment(0, (4 * MiB) / 512, 1) })).status).toBe(0);
    const afterUnmap = await allocated();
    expect((await blkRequest(rig, T_WRITE_ZEROES, 0, { out: segment((8 * MiB) / 512, (4 * MiB) / 512) })).status).toBe(0);
    const afterZero = await allocated();
    const onDisk = await readFile(path);
    expect(onDisk.subarray(0, 4 * MiB).every((b) => b === 0)).toBe(true);
    expect(onDisk.subarray(8 * MiB, 12 * MiB).every((b) => b === 0)).toBe(true);
    expect(onDisk.length).toBe(16 * MiB);
    // Filesystems that cannot punch holes fall back to writing zeros (logged); this machine's can.
    expect(before - afterUnmap).toBeGreaterThanOrEqual(4 * MiB - 64 * 1024);
    expect(afterZero).toBe(afterUnmap);
  });

  it('a read-only disk refuses writes and leaves the file unchanged', async () => {
    const initial = pattern(65536, 5);
    const path = await image('ro.raw', initial);
    const backend = await openRaw(path, { readOnly: true });
    const rig = blkRig(backend);
    expect(hasFeature(rig.driver.features, BLK_F_RO)).toBe(true);
    expect(hasFeature(rig.driver.features, BLK_F_DISCARD)).toBe(false);
    const w = await blkRequest(rig, T_OUT, 0, { out: new Uint8Array(512) });
    expect(w.status).toBe(1);
    expect((await blkRequest(rig, T_WRITE_ZEROES, 0, { out: segment(0, 1) })).status).toBe(1);
    expect((await blkRequest(rig, T_FLUSH, 0)).status).toBe(0);
    expect((await blkRequest(rig, T_IN, 0, { inLength: 512 })).status).toBe(0);
    expect((await readFile(path)).equals(Buffer.from(initial))).toBe(true);
  });

  it('out-of-range sectors, partial sectors and unknown types fail without touching the file', async () => {
    const initial = pattern(65536, 11);
    const path = await image('range.raw', initial);
    const backend = await openRaw(path);
    const rig = blkRig(backend);
    expect((await blkRequest(rig, T_IN, 128, { inLength: 512 })).status).toBe(1);
    expect((await blkRequest(rig, T_IN, 127, { inLength: 1024 })).status).toBe(1);
    expect((await blkRequest(rig, T_OUT, 127, { out: new Uint8Array(1024) })).status).toBe(1);
    expect((await blkRequest(rig, T_OUT, 2 ** 40, { out: new Uint8Array(512) })).status).toBe(1);
    expect((await blkRequest(rig, T_OUT, 0, { out: new Uint8Array(100) })).status).toBe(1);
    expect((await blkRequest(rig, 77, 0)).status).toBe(2);
    expect((await blkRequest(rig, T_IN, 127, { inLength: 512 })).status).toBe(0);
    expect((await readFile(path)).equals(Buffer.from(initial))).toBe(true);
    expect(rig.driver.status & STATUS_DEVICE_NEEDS_RESET).toBe(0);
  });

  it('serves several disks independently', async () => {
    const a = await image('a.raw', pattern(65536, 1));
    const b = await image('b.raw', pattern(131072, 2));
    const ba = await openRaw(a);
    const bb = await openRaw(b);
    const ra = blkRig(ba, { serial: 'disk-a' });
    const rb = blkRig(bb, { serial: 'disk-b' });
    await Promise.all([
      blkRequest(ra, T_OUT, 0, { out: new Uint8Array(512).fill(0xaa) }),
      blkRequest(rb, T_OUT, 0, { out: new Uint8Array(512).fill(0xbb) }),
    ]);
    expect((await readFile(a))[0]).toBe(0xaa);
    expect((await readFile(b))[0]).toBe(0xbb);
    expect((await readFile(a)).length).toBe(65536);
    expect(Buffer.from((await blkRequest(rb, T_GET_ID, 0, { inLength: 20 })).data).toString('latin1')).toMatch(/^disk-b/);
    expect(rb.transport.read(0x100, 4)).toBe(256);
  });

  it('handles indirect descriptor tables', async () => {
    const initial = pattern(1 << 20, 13);
    const path = await image('ind.raw', initial);
    const backend = await openRaw(path);
    const rig = blkRig(backend);
    const r = await blkRequest(rig, T_IN, 64, { inLength: 16384, split: true, indirect: true });
    expect(r.status).toBe(0);
    expect(Buffer.from(r.data).equals(Buffer.from(initial.subarray(64 * 512, 64 * 512 + 16384)))).toBe(true);
    const data = pattern(4096, 17);
    expect((await blkRequest(rig, T_OUT, 1, { out: data, split: true, indirect: true })).status).toBe(0);
    expect((await readFile(path)).subarray(512, 512 + 4096).equals(Buffer.from(data))).toBe(true);
  });

  it('indirect descriptors without the negotiated feature put the device in NEEDS_RESET', async () => {
    const path = await image('noind.raw', new Uint8Array(65536));
    const backend = await openRaw(path);
    const rig = blkRig(backend, { features: featureBit(F_VERSION_1) });
    const q = rig.driver.queues[0]!;
    const table = rig.driver.alloc.alloc(64, 16);
    const st = rig.driver.alloc.alloc(16);
    q.add([{ addr: st, len: 16, write: false }, { addr: st, len: 1, write: true }], table);
    rig.driver.notify(0);
    expect(rig.driver.status & STATUS_DEVICE_NEEDS_RESET).toBe(STATUS_DEVICE_NEEDS_RESET);
    expect(rig.driver.reg(MMIO.InterruptStatus) & 2).toBe(2);
    expect(rig.irq.level).toBe(true);
    expect(rig.logs.length).toBe(1);
    // A reset brings it back.
    rig.driver.alloc.resetAll();
    rig.driver.alloc.alloc(0x1000);
    rig.driver.init({ features: featureBit(F_VERSION_1) });
    expect(rig.irq.level).toBe(false);
    expect((await blkRequest(rig, T_IN, 0, { inLength: 512 })).status).toBe(0);
  });

  it('EVENT_IDX: interrupts only when used_event is passed; avail_event tracks consumption', async () => {
    const path = await image('evt.raw', pattern(65536, 21));
    const backend = await openRaw(path);
    const rig = blkRig(backend);
    expect(hasFeature(rig.driver.features, F_EVENT_IDX)).toBe(true);
    const q = rig.driver.queues[0]!;
    // Ask for an interrupt only after the 4th completion (used index passes 3).
    q.setUsedEvent(3);
    const before = rig.irq.raises;
    const heads: number[] = [];
    for (let i = 0; i < 4; i++) {
      const hdr = rig.driver.alloc.alloc(16);
      rig.mem.writeU32(hdr, T_IN);
      rig.mem.writeU64(hdr + 8, BigInt(i));
      const data = rig.driver.alloc.alloc(512);
      const st = rig.driver.alloc.alloc(1);
      heads.push(q.add([{ addr: hdr, len: 16, write: false }, { addr: data, len: 512, write: true }, { addr: st, len: 1, write: true }]));
      rig.driver.notify(0);
      // Let each one complete before the next, so interrupts are decided one by one.
      while (q.usedIdx() !== i + 1) await new Promise<void>((r) => setImmediate(r));
      await new Promise<void>((r) => setImmediate(r));
      if (i < 3) expect(rig.irq.raises).toBe(before);
    }
    expect(rig.irq.raises).toBe(before + 1);
    expect(q.availEvent()).toBe(4);
    // Without EVENT_IDX, NO_INTERRUPT in avail.flags suppresses interrupts.
    const rig2 = blkRig(await openRaw(path), { features: featureBit(F_VERSION_1) });
    rig2.driver.queues[0]!.setAvailFlags(1);
    const n = rig2.irq.raises;
    expect((await blkRequest(rig2, T_IN, 0, { inLength: 512 })).status).toBe(0);
    expect(rig2.irq.raises).toBe(n);
    rig2.driver.queues[0]!.setAvailFlags(0);
    expect((await blkRequest(rig2, T_IN, 0, { inLength: 512 })).status).toBe(0);
    expect(rig2.irq.raises).toBe(n + 1);
  });

  for (const eventIdx of [true, false]) {
    it(`a driver that kicks only when asked never stalls (${eventIdx ? 'EVENT_IDX' : 'NO_NOTIFY flag'})`, async () => {
      const initial = pattern(1 << 20, 41);
      const path = await image(`kick-${eventIdx}.raw`, initial);
      const rig = blkRig(await openRaw(path), { features: featureBit(F_VERSION_1) | (eventIdx ? featureBit(F_EVENT_IDX) : 0n) });
      const { driver, mem } = rig;
      const q = driver.queues[0]!;
      const waiting = new Map<number, () => void>();
      let requests = 0;
      // Completion dispatcher: the "interrupt handler".
      let stop = false;
      const dispatcher = (async () => {
        while (!stop) {
          const u = q.popUsed();
          if (u) {
            q.recycle(u.id);
            waiting.get(u.id)?.();
            waiting.delete(u.id);
          } else {
            await rig.irq.wait(5);
          }
        }
      })();
      const worker = async (w: number): Promise<void> => {
        for (let i = 0; i < 40; i++) {
          const sector = (w * 40 + i) * 4;
          const hdr = driver.alloc.alloc(16);
          const data = driver.alloc.alloc(2048);
          const st = driver.alloc.alloc(1);
          mem.writeU32(hdr, T_IN);
          mem.writeU64(hdr + 8, BigInt(sector));
          const old = q.availIdx;
          const head = q.add([{ addr: hdr, len: 16, write: false }, { addr: data, len: 2048, write: true }, { addr: st, len: 1, write: true }]);
          const done = new Promise<void>((r) => waiting.set(head, r));
          driver.kickIfNeeded(0, old);
          requests++;
          await done;
          expect(mem.readU8(st)).toBe(0);
          expect(Buffer.from(mem.read(data, 2048)).equals(Buffer.from(initial.subarray(sector * 512, sector * 512 + 2048)))).toBe(true);
        }
      };
      await Promise.all([0, 1, 2, 3, 4, 5].map(worker));
      stop = true;
      await dispatcher;
      expect(requests).toBe(240);
      // Some additions happened while others were in flight, and needed no notification.
      expect(driver.kicks).toBeLessThan(requests);
      expect(driver.kicks).toBeGreaterThan(0);
    });
  }

  it('runs many requests in flight; a flush completes after the writes before it', async () => {
    const path = await image('many.raw', new Uint8Array(1 << 20));
    const backend = await openRaw(path);
    const rig = blkRig(backend);
    const q = rig.driver.queues[0]!;
    const order: number[] = [];
    const expected = new Map<number, number>();
    for (let i = 0; i < 32; i++) {
      const hdr = rig.driver.alloc.alloc(16);
      rig.mem.writeU32(hdr, i === 31 ? T_FLUSH : T_OUT);
      rig.mem.writeU64(hdr + 8, BigInt(i * 8));
      const data = rig.driver.alloc.alloc(4096);
      rig.mem.fill(data, 4096, i + 1);
      const st = rig.driver.alloc.alloc(1);
      const bufs = i === 31 ? [{ addr: hdr, len: 16, write: false }] : [{ addr: hdr, len: 16, write: false }, { addr: data, len: 4096, write: false }];
      expected.set(q.add([...bufs, { addr: st, len: 1, write: true }]), st);
    }
    rig.driver.notify(0);
    while (order.length < 32) order.push((await rig.driver.waitUsed(0)).id);
    for (const st of expected.values()) expect(rig.mem.readU8(st)).toBe(0);
    const disk = await readFile(path);
    for (let i = 0; i < 31; i++) expect(disk[i * 4096]).toBe(i + 1);
  });
});

describe('virtio-mmio transport', () => {
  it('builds the kernel command-line fragment', () => {
    expect(virtioMmioCmdline(0xd0000000, 5)).toBe('virtio_mmio.device=0x200@0xd0000000:5');
    expect(virtioMmioCmdline(0xd0000200, 11)).toBe('virtio_mmio.device=0x200@0xd0000200:11');
    expect(() => virtioMmioCmdline(-1, 5)).toThrow(/base/);
  });

  it('refuses FEATURES_OK without VERSION_1 and reset clears state', async () => {
    const path = await image('feat.raw', new Uint8Array(4096));
    const backend = await openRaw(path);
    const rig = blkRig(backend);
    const d = rig.driver;
    d.setReg(MMIO.Status, 0);
    expect(d.status).toBe(0);
    d.setReg(MMIO.Status, 3);
    d.setReg(MMIO.DriverFeaturesSel, 1);
    d.setReg(MMIO.DriverFeatures, 0);
    d.setReg(MMIO.Status, 3 | 8);
    expect(d.status & 8).toBe(0);
    d.setReg(MMIO.QueueSel, 0);
    expect(d.reg(MMIO.QueueReady)).toBe(0);
    expect(d.reg(MMIO.QueueNumMax)).toBe(256);
    d.setReg(MMIO.QueueSel, 1);
    expect(d.reg(MMIO.QueueNumMax)).toBe(0);
  });

  it('a ring outside guest RAM at DRIVER_OK means NEEDS_RESET, not an exception', async () => {
    const path = await image('ring.raw', new Uint8Array(4096));
    const backend = await openRaw(path);
    const rig = blkRig(backend);
    const d = rig.driver;
    d.setReg(MMIO.Status, 0);
    d.setReg(MMIO.Status, 3);
    d.setReg(MMIO.DriverFeaturesSel, 1);
    d.setReg(MMIO.DriverFeatures, 1);
    d.setReg(MMIO.Status, 11);
    d.setReg(MMIO.QueueSel, 0);
    d.setReg(MMIO.QueueNum, 256);
    d.setReg(MMIO.QueueDescLow, rig.mem.end - 16);
    d.setReg(MMIO.QueueReady, 1);
    d.setReg(MMIO.Status, 15);
    expect(d.status & STATUS_DEVICE_NEEDS_RESET).toBe(STATUS_DEVICE_NEEDS_RESET);
    d.notify(0);
    expect(rig.logs.length).toBe(1);
  });
});
