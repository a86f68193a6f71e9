/** PCI host bridge (configuration mechanism #1), BARs and MSI-X, driven through real port/MMIO buses. */
import { describe, expect, it } from 'vitest';
import { Bus, type BusDevice } from '../../lib/machine/bus.js';
import { MsixCapability, PciBarAllocator, PciFunction, PciHostBridge } from '../../lib/pci/index.js';
import { ConfigPorts, MsiSpy, sizeBars, walkCapabilities } from './pci-driver.js';

class Scratch implements BusDevice {
  readonly regs = new Map<number, number>();
  read(offset: number): number { return this.regs.get(offset) ?? 0; }
  write(offset: number, _size: number, value: number): void { this.regs.set(offset, value); }
}

function rig() {
  const pio = new Bus('pio');
  const mmio = new Bus('mmio');
  const logs: string[] = [];
  const bridge = new PciHostBridge({ log: (m) => logs.push(m) });
  bridge.attach(pio);
  const fn = new PciFunction('test-fn', { vendorId: 0x1234, deviceId: 0x5678, classCode: 0xff0000, revision: 3 }, { log: (m) => logs.push(m) });
  const bar0 = new Scratch();
  const bar2 = new Scratch();
  fn.addBar({ index: 0, kind: 'mem32', size: 0x2000, device: bar0, name: 'a' });
  fn.addBar({ index: 2, kind: 'mem64', size: 0x4000, prefetchable: true, device: bar2, name: 'b' });
  new PciBarAllocator(0xe000_0000, 0xe010_0000).place(fn);
  fn.attach(mmio);
  const slot = bridge.addFunction(fn);
  return { pio, mmio, bridge, fn, slot, bar0, bar2, cfg: new ConfigPorts(pio), logs };
}

describe('configuration mechanism #1', () => {
  it('CONFIG_ADDRESS reads back as written (Linux type-1 probe) and host bridge sits at 00:00.0', () => {
    const { pio, cfg } = rig();
    pio.write(0xcf8, 4, 0x8000_0000);
    expect(pio.read(0xcf8, 4)).toBe(0x8000_0000);
    // A byte write to 0xcfb (mechanism #2 probe) must not disturb CONFIG_ADDRESS.
    pio.write(0xcfb, 1, 0x01);
    expect(pio.read(0xcf8, 4)).toBe(0x8000_0000);
    expect(cfg.read(0, 0x00, 2)).toBe(0x1b36);
    expect(cfg.read(0, 0x0a, 2)).toBe(0x0600); // host bridge class
  });

  it('finds the function, decodes byte/word/dword accesses at 0xcfc+offset, absent slots read all ones', () => {
    const { cfg, slot } = rig();
    expect(slot).toBe(1);
    expect(cfg.read(slot, 0x00, 4)).toBe(0x5678_1234);
    expect(cfg.read(slot, 0x02, 2)).toBe(0x5678);
    expect(cfg.read(slot, 0x03, 1)).toBe(0x56);
    expect(cfg.read(slot, 0x08, 1)).toBe(3);
    expect(cfg.read(slot, 0x08, 4) >>> 8).toBe(0xff0000); // class code above the revision
    expect(cfg.read(slot, 0x09, 4)).toBe(0xffffffff); // misaligned dword: not decoded
    expect(cfg.read(7, 0x00, 4)).toBe(0xffffffff);
    expect(cfg.read(7, 0x00, 2)).toBe(0xffff);
  });

  it('data port accesses with the enable bit clear read all ones and are ignored on write', () => {
    const { pio, cfg, slot } = rig();
    pio.write(0xcf8, 4, (slot << 11) | 0x3c);
    expect(pio.read(0xcfc, 4)).toBe(0xffffffff);
    pio.write(0xcfc, 1, 0x55);
    expect(cfg.read(slot, 0x3c, 1)).toBe(0);
    cfg.write(slot, 0x3c, 1, 0x0b);
    expect(cfg.read(slot, 0x3c, 1)).toBe(0x0b);
  });

  it('read-only registers ignore writes', () => {
    const { cfg, slot } = rig();
    cfg.write(slot, 0x00, 4, 0);
    cfg.write(slot, 0x08, 4, 0);
    expect(cfg.read(slot, 0x00, 4)).toBe(0x5678_1234);
    expect(cfg.read(slot, 0x08, 1)).toBe(3);
  });
});

describe('BARs', () => {
  it('size by writing all ones: 32-bit and 64-bit memory BARs, preassigned addresses kept', () => {
    const { cfg, slot, fn } = rig();
    const bars = sizeBars(cfg, slot);
    expect(bars).toEqual([
      { index: 2, address: 0xe000_0000, size: 0x4000, is64: true },
      { index: 0, address: 0xe000_4000, size: 0x2000, is64: false },
    ].sort((a, b) => a.index - b.index));
    expect(cfg.read(slot, 0x18, 4) & 0xf).toBe(0xc); // 64-bit, prefetchable
    expect(cfg.read(slot, 0x10, 4) & 0xf).toBe(0);
    expect(cfg.read(slot, 0x14, 4)).toBe(0); // unimplemented BAR1
    cfg.write(slot, 0x14, 4, 0xffffffff);
    expect(cfg.read(slot, 0x14, 4)).toBe(0);
    expect(fn.barMapping(0)).toBe(0xe000_4000);
  });

  it('memory-space enable gates decoding; moving a BAR moves its mapping', () => {
    const { cfg, slot, mmio, bar0, fn } = rig();
    mmio.write(0xe000_4010, 4, 0xabcd);
    expect(bar0.regs.get(0x10)).toBe(0xabcd);
    cfg.write(slot, 0x04, 2, 0); // memory off
    expect(fn.barMapping(0)).toBeUndefined();
    expect(mmio.read(0xe000_4010, 4)).toBe(0xffffffff);
    cfg.write(slot, 0x10, 4, 0xe080_0000);
    cfg.write(slot, 0x04, 2, 0x2);
    expect(fn.barMapping(0)).toBe(0xe080_0000);
    expect(mmio.read(0xe080_0010, 4)).toBe(0xabcd);
    expect(mmio.find(0xe000_4010)).toBeUndefined();
  });

  it('a 64-bit BAR can be moved above 4 GiB', () => {
    const { cfg, slot, mmio, bar2, fn } = rig();
    cfg.write(slot, 0x18, 4, 0x0000_0000);
    cfg.write(slot, 0x1c, 4, 0x10);
    expect(fn.barAddress(2)).toBe(0x10_0000_0000);
    mmio.write(0x10_0000_0008, 4, 7);
    expect(bar2.regs.get(8)).toBe(7);
  });

  it('overlapping BARs are left undecoded with a log line, not a crash', () => {
    const { cfg, slot, logs, fn } = rig();
    cfg.write(slot, 0x10, 4, 0xe000_0000); // on top of BAR2
    expect(fn.barMapping(0)).toBeUndefined();
    expect(logs.some((l) => /BAR0 at 0xe0000000 not decoded/.test(l))).toBe(true);
  });

  it('rejects bad BAR declarations and placements', () => {
    const fn = new PciFunction('x', { vendorId: 1, deviceId: 2, classCode: 0 });
    const d = new Scratch();
    expect(() => fn.addBar({ index: 5, kind: 'mem64', size: 0x1000, device: d, name: 'x' })).toThrow(/does not fit/);
    expect(() => fn.addBar({ index: 0, kind: 'mem32', size: 0x1800, device: d, name: 'x' })).toThrow(/power of two/);
    fn.addBar({ index: 0, kind: 'mem64', size: 0x1000, device: d, name: 'x' });
    expect(() => fn.addBar({ index: 1, kind: 'mem32', size: 0x1000, device: d, name: 'x' })).toThrow(/in use/);
    expect(() => fn.setBarAddress(0, 0x800)).toThrow(/not aligned/);
    expect(() => new PciFunction('y', { vendorId: 0xffff, deviceId: 0, classCode: 0 })).toThrow(/no device/);
  });

  it('machine reset puts BARs and command back to the assigned state', () => {
    const { cfg, slot, fn, bridge } = rig();
    cfg.write(slot, 0x10, 4, 0xe080_0000);
    cfg.write(slot, 0x04, 2, 0);
    bridge.reset();
    expect(fn.barAddress(0)).toBe(0xe000_4000);
    expect(fn.barMapping(0)).toBe(0xe000_4000);
  });
});

describe('MSI-X', () => {
  function msixRig() {
    const r = rig();
    const fn = new PciFunction('msix-fn', { vendorId: 0x1234, deviceId: 1, classCode: 0 });
    const spy = new MsiSpy();
    const msix = new MsixCapability(fn, { vectors: 3, bar: 0, msi: spy });
    fn.addBar({ index: 0, kind: 'mem32', size: 0x1000, device: msix.barDevice, name: 'msix' });
    fn.setBarAddress(0, 0xe100_0000);
    fn.attach(r.mmio);
    const slot = r.bridge.addFunction(fn);
    return { ...r, fn, msix, spy, slot };
  }

  it('capability is listed with table size, BIR and offsets', () => {
    const { cfg, slot, msix } = msixRig();
    const caps = walkCapabilities(cfg, slot);
    expect(caps.map((c) => c.id)).toEqual([0x11]);
    expect(cfg.read(slot, caps[0]!.offset + 2, 2) & 0x7ff).toBe(2);
    expect(cfg.read(slot, caps[0]!.offset + 4, 4)).toBe(0); // table at BAR0 + 0
    expect(cfg.read(slot, caps[0]!.offset + 8, 4)).toBe(msix.pbaOffset);
  });

  it('delivers unmasked vectors, holds masked ones pending and sends them on unmask', () => {
    const { cfg, slot, mmio, msix, spy } = msixRig();
    const base = 0xe100_0000;
    expect(msix.notify(0)).toBe(false); // disabled: caller uses INTx
    for (let v = 0; v < 3; v++) {
      mmio.write(base + 16 * v, 4, 0xfee0_0000);
      mmio.write(base + 16 * v + 8, 4, 0x30 + v);
    }
    // Vectors start masked.
    expect(mmio.read(base + 12, 4) & 1).toBe(1);
    const cap = walkCapabilities(cfg, slot)[0]!.offset;
    cfg.write(slot, 0x04, 2, 0x6);
    cfg.write(slot, cap + 2, 2, 0x8000);
    expect(msix.enabled).toBe(true);
    expect(msix.notify(1)).toBe(true);
    expect(spy.messages).toEqual([]);
    expect(mmio.read(base + msix.pbaOffset, 4)).toBe(0b010);
    mmio.write(base + 16 + 12, 4, 0); // unmask vector 1
    expect(spy.messages).toEqual([{ address: 0xfee0_0000, data: 0x31 }]);
    expect(mmio.read(base + msix.pbaOffset, 4)).toBe(0);
    // Function mask holds everything; clearing it delivers.
    mmio.write(base + 12, 4, 0);
    cfg.write(slot, cap + 2, 2, 0xc000);
    msix.notify(0);
    expect(spy.messages.length).toBe(1);
    cfg.write(slot, cap + 2, 2, 0x8000);
    expect(spy.messages.at(-1)).toEqual({ address: 0xfee0_0000, data: 0x30 });
    msix.notify(0);
    expect(spy.messages.length).toBe(3);
    // Out-of-range vectors are ignored.
    msix.notify(99);
    expect(spy.messages.length).toBe(3);
  });

  it('without bus mastering a message stays pending until it is enabled', () => {
    const { cfg, slot, mmio, msix, spy } = msixRig();
    const base = 0xe100_0000;
    mmio.write(base, 4, 0xfee0_0000);
    mmio.write(base + 8, 4, 0x41);
    mmio.write(base + 12, 4, 0);
    const cap = walkCapabilities(cfg, slot)[0]!.offset;
    cfg.write(slot, 0x04, 2, 0x2);
    cfg.write(slot, cap + 2, 2, 0x8000);
    msix.notify(0);
    expect(spy.messages).toEqual([]);
    expect(msix.isPending(0)).toBe(true);
    cfg.write(slot, 0x04, 2, 0x6);
    cfg.write(slot, cap + 2, 2, 0x8000); // any control write re-evaluates pending vectors
    expect(spy.messages).toEqual([{ address: 0xfee0_0000, data: 0x41 }]);
  });

  it('the PBA is read-only and table accesses outside the table are ignored', () => {
    const { mmio, msix } = msixRig();
    const base = 0xe100_0000;
    mmio.write(base + msix.pbaOffset, 4, 0xffffffff);
    expect(mmio.read(base + msix.pbaOffset, 4)).toBe(0);
    mmio.write(base + 0x800, 4, 1);
    expect(mmio.read(base + 0x800, 4)).toBe(0);
  });
});
