/**
 * virtio-blk over the modern virtio-pci transport, end to end through the buses: a test driver enumerates
 * the device through ports 0xcf8/0xcfc, sizes BARs, walks the virtio capabilities, enables MSI-X and reads and
 * writes a real image file; completions arrive as MSI messages (MsiSink spy) or, without MSI-X, as INTx + ISR.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openBlockBackend } from '../../lib/block/index.js';
import type { BlockBackend } from '../../lib/block/backend.js';
import { Bus } from '../../lib/machine/bus.js';
import { GuestMemory } from '../../lib/machine/guest-memory.js';
import { PciBarAllocator, PciHostBridge } from '../../lib/pci/index.js';
import { VirtioBlk } from '../../lib/virtio/blk/device.js';
import { STATUS_DEVICE_NEEDS_RESET, STATUS_DRIVER_OK } from '../../lib/virtio/constants.js';
import { VirtioRng } from '../../lib/virtio/rng/device.js';
import { COMMON, VIRTIO_MSI_NO_VECTOR } from '../../lib/virtio/pci/constants.js';
import { VirtioPciTransport } from '../../lib/virtio/pci/index.js';
import { ConfigPorts, MSI_ADDRESS, MsiSpy, VirtioPciTestDriver, msiData } from '../pci/pci-driver.js';
import { GuestAllocator, RecordingIrq, type Buffer } from './driver.js';
import { pattern } from './blk-helpers.js';

const T_IN = 0;
const T_OUT = 1;
const T_FLUSH = 4;

let dir: string;
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'nodevmm-pci-blk-')); });
afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

async function pciRig(imageBytes: Uint8Array, opts: { intx?: boolean } = {}) {
  const path = join(dir, 'disk.img');
  await writeFile(path, imageBytes);
  const backend: BlockBackend = await openBlockBackend(path);
  const mem = GuestMemory.ofSize(16 << 20);
  const pio = new Bus('pio');
  const mmio = new Bus('mmio');
  const spy = new MsiSpy();
  const irq = new RecordingIrq();
  const logs: string[] = [];
  const bridge = new PciHostBridge();
  bridge.attach(pio);
  const transport = new VirtioPciTransport(new VirtioBlk(backend), mem, {
    msi: spy, ...(opts.intx ? { intx: irq, intxLine: 11 } : {}), log: (m) => logs.push(m), name: 'virtio-blk-pci',
  });
  new PciBarAllocator(0xe000_0000, 0xf000_0000).place(transport.pci);
  transport.pci.attach(mmio);
  const slot = bridge.addFunction(transport.pci);
  const cfg = new ConfigPorts(pio);
  const driver = new VirtioPciTestDriver(cfg, mmio, slot, mem, new GuestAllocator(0x10000, mem.end));
  return { path, backend, mem, pio, mmio, spy, irq, logs, bridge, transport, slot, cfg, driver };
}

type Rig = Awaited<ReturnType<typeof pciRig>>;

async function request(r: Rig, type: number, sector: number, wake: (ms: number) => Promise<void>, o: { out?: Uint8Array; inLength?: number } = {}) {
  const { mem, driver } = r;
  const mark = driver.alloc.mark();
  try {
    const hdr = driver.alloc.alloc(16);
    mem.writeU32(hdr, type);
    mem.writeU32(hdr + 4, 0);
    mem.writeU64(hdr + 8, BigInt(sector));
    const bufs: Buffer[] = [{ addr: hdr, len: 16, write: false }];
    if (o.out) {
      const a = driver.alloc.alloc(o.out.length, 512);
      mem.write(a, o.out);
      bufs.push({ addr: a, len: o.out.length, write: false });
    }
    let inAddr = 0;
    if (o.inLength) {
      inAddr = driver.alloc.alloc(o.inLength, 512);
      bufs.push({ addr: inAddr, len: o.inLength, write: true });
    }
    const st = driver.alloc.alloc(1);
    mem.writeU8(st, 0xff);
    bufs.push({ addr: st, len: 1, write: true });
    await driver.run(0, bufs, wake);
    return { status: mem.readU8(st), data: o.inLength ? mem.read(inAddr, o.inLength) : new Uint8Array(0) };
  } finally {
    driver.alloc.release(mark);
  }
}

describe('virtio-blk over virtio-pci', () => {
  it('enumerates as 1af4:1042 with the virtio capabilities in BAR4 and MSI-X in BAR1', async () => {
    const r = await pciRig(new Uint8Array(64 * 1024));
    try {
      expect(r.cfg.read(r.slot, 0x00, 2)).toBe(0x1af4);
      expect(r.cfg.read(r.slot, 0x02, 2)).toBe(0x1042);
      expect(r.cfg.read(r.slot, 0x08, 1)).toBeGreaterThanOrEqual(1);
      expect(r.cfg.read(r.slot, 0x2e, 2)).toBeGreaterThanOrEqual(0x40);
      expect(r.driver.bars.map((b) => [b.index, b.is64, b.size])).toEqual([[1, false, 0x1000], [4, true, 0x4000]]);
      const types = r.driver.caps.filter((c) => c.id === 0x09).map((c) => c.cfgType);
      expect(types).toEqual([1, 2, 3, 4, 5]);
      expect(r.driver.caps.some((c) => c.id === 0x11)).toBe(true);
      for (const c of r.driver.caps.filter((c) => c.id === 0x09 && c.cfgType !== 5)) expect(c.bar).toBe(4);
    } finally {
      await r.backend.close();
    }
  });

  it('reads and writes a real file; every completion is an MSI with the queue vector', async () => {
    const image = pattern(256 * 1024, 7);
    const r = await pciRig(image);
    try {
      r.driver.init();
      expect(r.driver.status & STATUS_DRIVER_OK).toBe(STATUS_DRIVER_OK);
      // Capacity in 512-byte sectors, from the device config structure.
      expect(r.driver.deviceConfig(0, 4)).toBe(512);
      const wake = (ms: number) => r.spy.wait(ms);
      const read = await request(r, T_IN, 8, wake, { inLength: 4096 });
      expect(read.status).toBe(0);
      expect(Buffer.from(read.data).equals(Buffer.from(image.subarray(8 * 512, 8 * 512 + 4096)))).toBe(true);
      expect(r.spy.messages.length).toBeGreaterThanOrEqual(1);
      expect(r.spy.messages.every((m) => m.address === MSI_ADDRESS && m.data === msiData(0))).toBe(true);

      const data = pattern(8192, 99);
      expect((await request(r, T_OUT, 100, wake, { out: data })).status).toBe(0);
      expect((await request(r, T_FLUSH, 0, wake)).status).toBe(0);
      const onDisk = await readFile(r.path);
      expect(Buffer.from(onDisk.subarray(100 * 512, 100 * 512 + 8192)).equals(Buffer.from(data))).toBe(true);
      expect(Buffer.from(onDisk.subarray(0, 100 * 512)).equals(Buffer.from(image.subarray(0, 100 * 512)))).toBe(true);
      // No INTx was used: the ISR stays clear with MSI-X on.
      expect(r.driver.readIsr()).toBe(0);
    } finally {
      await r.backend.close();
    }
  });

  it('masking the queue vector holds the interrupt in the PBA until unmasked', async () => {
    const r = await pciRig(pattern(64 * 1024, 3));
    try {
      r.driver.init();
      const { table, pba } = r.driver.msixTable();
      r.mmio.write(table + 12, 4, 1); // mask vector 0 (queue 0)
      const before = r.spy.messages.length;
      const q = r.driver.queues[0]!;
      const hdr = r.driver.alloc.alloc(16);
      r.mem.writeU32(hdr, T_IN);
      r.mem.writeU64(hdr + 8, 0n);
      const buf = r.driver.alloc.alloc(512, 512);
      const st = r.driver.alloc.alloc(1);
      q.add([{ addr: hdr, len: 16, write: false }, { addr: buf, len: 512, write: true }, { addr: st, len: 1, write: true }]);
      r.driver.notify(0);
      for (let i = 0; i < 200 && q.usedIdx() === 0; i++) await new Promise((res) => setTimeout(res, 5));
      expect(q.usedIdx()).toBe(1);
      expect(r.spy.messages.length).toBe(before);
      expect(r.mmio.read(pba, 4) & 1).toBe(1);
      r.mmio.write(table + 12, 4, 0);
      expect(r.spy.messages.length).toBe(before + 1);
      expect(r.spy.messages.at(-1)!.data).toBe(msiData(0));
      expect(r.mmio.read(pba, 4) & 1).toBe(0);
    } finally {
      await r.backend.close();
    }
  });

  it('without MSI-X, completions set the ISR and assert INTx; reading the ISR deasserts it', async () => {
    const r = await pciRig(pattern(64 * 1024, 5), { intx: true });
    try {
      expect(r.cfg.read(r.slot, 0x3d, 1)).toBe(1); // INTA#
      expect(r.cfg.read(r.slot, 0x3c, 1)).toBe(11);
      r.driver.init({ msix: false });
      expect(r.driver.c16(COMMON.QueueMsixVector)).toBe(VIRTIO_MSI_NO_VECTOR);
      const res = await request(r, T_IN, 0, (ms) => r.irq.wait(ms), { inLength: 512 });
      expect(res.status).toBe(0);
      expect(r.irq.level).toBe(true);
      expect(r.driver.readIsr() & 1).toBe(1);
      expect(r.irq.level).toBe(false);
      expect(r.driver.readIsr()).toBe(0);
      expect(r.spy.messages).toEqual([]);
    } finally {
      await r.backend.close();
    }
  });

  it('vector numbers beyond the table read back as NO_VECTOR', async () => {
    const r = await pciRig(new Uint8Array(4096));
    try {
      r.driver.w16(COMMON.QueueSelect, 0);
      r.driver.w16(COMMON.QueueMsixVector, 7);
      expect(r.driver.c16(COMMON.QueueMsixVector)).toBe(VIRTIO_MSI_NO_VECTOR);
      r.driver.w16(COMMON.MsixConfig, 1);
      expect(r.driver.c16(COMMON.MsixConfig)).toBe(1);
      expect(r.driver.c16(COMMON.NumQueues)).toBe(1);
      r.driver.w16(COMMON.QueueSelect, 5);
      expect(r.driver.c16(COMMON.QueueSize)).toBe(0);
    } finally {
      await r.backend.close();
    }
  });

  it('the PCI_CFG capability is a window into BAR4 (reads the common config through config space)', async () => {
    const r = await pciRig(new Uint8Array(4096));
    try {
      const cap = r.driver.caps.find((c) => c.cfgType === 5)!;
      r.cfg.write(r.slot, cap.offset + 4, 1, 4); // bar
      r.cfg.write(r.slot, cap.offset + 8, 4, COMMON.NumQueues); // offset
      r.cfg.write(r.slot, cap.offset + 12, 4, 2); // length
      expect(r.cfg.read(r.slot, cap.offset + 16, 4)).toBe(1);
      r.cfg.write(r.slot, cap.offset + 8, 4, COMMON.QueueSelect);
      r.cfg.write(r.slot, cap.offset + 16, 2, 0);
      r.cfg.write(r.slot, cap.offset + 8, 4, COMMON.QueueSize);
      expect(r.cfg.read(r.slot, cap.offset + 16, 4)).toBeGreaterThan(0);
      // A bad window (length 3) reads 0 and does nothing.
      r.cfg.write(r.slot, cap.offset + 12, 4, 3);
      expect(r.cfg.read(r.slot, cap.offset + 16, 4)).toBe(0);
    } finally {
      await r.backend.close();
    }
  });

  it('a bad ring address becomes DEVICE_NEEDS_RESET and a config MSI, not an exception', async () => {
    const r = await pciRig(new Uint8Array(4096));
    try {
      r.driver.init();
      const before = r.spy.messages.length;
      r.mem.writeU16(r.driver.queues[0]!.avail + 2, 1);
      r.mem.writeU16(r.driver.queues[0]!.avail + 4, 0);
      r.driver.queues[0]!.writeDesc(r.driver.queues[0]!.desc, 0, { addr: 0x7fff_ffff_0000, len: 16, flags: 0, next: 0 });
      r.driver.notify(0);
      for (let i = 0; i < 100 && !(r.driver.status & STATUS_DEVICE_NEEDS_RESET); i++) await new Promise((res) => setTimeout(res, 5));
      expect(r.driver.status & STATUS_DEVICE_NEEDS_RESET).toBe(STATUS_DEVICE_NEEDS_RESET);
      const config = r.driver.c16(COMMON.NumQueues); // the config vector is numQueues in our driver
      expect(r.spy.messages.slice(before).some((m) => m.data === msiData(config))).toBe(true);
      expect(r.logs.some((l) => /needs reset/.test(l))).toBe(true);
      // Reset through device_status clears everything.
      r.driver.w8(COMMON.DeviceStatus, 0);
      expect(r.driver.status).toBe(0);
      expect(r.driver.c16(COMMON.MsixConfig)).toBe(VIRTIO_MSI_NO_VECTOR);
    } finally {
      await r.backend.close();
    }
  });
});

describe('virtio-rng over virtio-pci', () => {
  it('has no device-config capability and fills buffers with an MSI per completion', async () => {
    const mem = GuestMemory.ofSize(4 << 20);
    const pio = new Bus('pio');
    const mmio = new Bus('mmio');
    const spy = new MsiSpy();
    const bridge = new PciHostBridge();
    bridge.attach(pio);
    const t = new VirtioPciTransport(new VirtioRng(), mem, { msi: spy });
    new PciBarAllocator(0xe000_0000, 0xf000_0000).place(t.pci);
    t.pci.attach(mmio);
    const slot = bridge.addFunction(t.pci);
    const cfg = new ConfigPorts(pio);
    expect(cfg.read(slot, 0x02, 2)).toBe(0x1044);
    const d = new VirtioPciTestDriver(cfg, mmio, slot, mem, new GuestAllocator(0x10000, mem.end));
    expect(d.caps.filter((c) => c.id === 0x09).map((c) => c.cfgType)).toEqual([1, 2, 3, 5]);
    d.init();
    const buf = d.alloc.alloc(64);
    mem.fill(buf, 64, 0);
    const used = await d.run(0, [{ addr: buf, len: 64, write: true }], (ms) => spy.wait(ms));
    expect(used.len).toBe(64);
    expect(mem.read(buf, 64).some((b) => b !== 0)).toBe(true);
    expect(spy.messages.length).toBeGreaterThanOrEqual(1);
  });
});
