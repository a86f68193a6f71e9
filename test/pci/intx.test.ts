/**
 * Legacy INTx for PCI functions and virtio-pci: the Interrupt Status bit, COMMAND.Interrupt-Disable, MSI-X
 * enable holding INTx# low, the slot -> IOAPIC pin routing (wired OR for shared pins), and the virtio ISR
 * (read-to-clear, de-asserting the line) — the device side through real config ports and MMIO, the platform
 * side through the TypeScript IOAPIC and LAPIC (what the interpreter runs).
 */
import { describe, expect, it } from 'vitest';
import { Bus } from '../../lib/machine/bus.js';
import { GuestMemory } from '../../lib/machine/guest-memory.js';
import type { InterruptController, IrqLine } from '../../lib/machine/irq.js';
import {
  MsixCapability,
  PCI_INTX_FIRST_GSI,
  PCI_STATUS_INTERRUPT,
  PciBarAllocator,
  PciFunction,
  PciHostBridge,
  PciIntxRouter,
  pciIntxGsi,
} from '../../lib/pci/index.js';
import { VirtioPciBus } from '../../lib/virtio/pci/attach.js';
import { ISR_CONFIG, ISR_QUEUE } from '../../lib/virtio/pci/constants.js';
import { VirtioRng } from '../../lib/virtio/rng/device.js';
import { testMachine } from '../devices/lapic-helpers.js';
import { GuestAllocator } from '../virtio/driver.js';
import { ConfigPorts, MsiSpy, VirtioPciTestDriver } from './pci-driver.js';

const COMMAND = 0x04;
const STATUS = 0x06;
const INTX_DISABLE = 1 << 10;

/** An IrqLine that records every level it is driven to. */
class LevelLog implements IrqLine {
  readonly levels: boolean[] = [];
  set(level: boolean): void { this.levels.push(level); }
  get level(): boolean { return this.levels.at(-1) ?? false; }
}

/** A function with INTA#, on bus 0 slot 1, behind real config ports. */
function intxFunction(options: { msix?: boolean } = {}) {
  const pio = new Bus('pio');
  const mmio = new Bus('mmio');
  const bridge = new PciHostBridge();
  bridge.attach(pio);
  const fn = new PciFunction('intx-fn', { vendorId: 0x1234, deviceId: 0x1, classCode: 0xff0000, interruptPin: 1, interruptLine: 17 });
  const spy = new MsiSpy();
  let msix: MsixCapability | undefined;
  if (options.msix) {
    msix = new MsixCapability(fn, { vectors: 2, bar: 1, msi: spy });
    fn.addBar({ index: 1, kind: 'mem32', size: 0x1000, device: msix.barDevice, name: 'msix' });
    new PciBarAllocator(0xe000_0000, 0xe010_0000).place(fn);
  }
  fn.attach(mmio);
  const slot = bridge.addFunction(fn);
  const line = new LevelLog();
  fn.connectIntx(line);
  return { fn, slot, cfg: new ConfigPorts(pio), line, msix, spy };
}

describe('PCI function INTx#', () => {
  it('announces INTA# and keeps the interrupt line register writable', () => {
    const { cfg, slot } = intxFunction();
    expect(cfg.read(slot, 0x3d, 1)).toBe(1);
    expect(cfg.read(slot, 0x3c, 1)).toBe(17);
    cfg.write(slot, 0x3c, 1, 0x2a);
    expect(cfg.read(slot, 0x3c, 1)).toBe(0x2a);
    // The pin is read-only.
    cfg.write(slot, 0x3d, 1, 3);
    expect(cfg.read(slot, 0x3d, 1)).toBe(1);
  });

  it('status bit 3 follows the function interrupt and INTx# follows it while Interrupt Disable is clear', () => {
    const { fn, cfg, slot, line } = intxFunction();
    expect(cfg.read(slot, STATUS, 2) & PCI_STATUS_INTERRUPT).toBe(0);
    fn.setIntxLevel(true);
    expect(cfg.read(slot, STATUS, 2) & PCI_STATUS_INTERRUPT).toBe(PCI_STATUS_INTERRUPT);
    expect(line.levels).toEqual([true]);
    expect(fn.intxAsserted).toBe(true);
    fn.setIntxLevel(true); // no edge on the line for a level that did not change
    expect(line.levels).toEqual([true]);
    fn.setIntxLevel(false);
    expect(cfg.read(slot, STATUS, 2) & PCI_STATUS_INTERRUPT).toBe(0);
    expect(line.levels).toEqual([true, false]);
  });

  it('Interrupt Disable holds INTx# low without hiding Interrupt Status, and clearing it re-asserts', () => {
    const { fn, cfg, slot, line } = intxFunction();
    cfg.write(slot, COMMAND, 2, cfg.read(slot, COMMAND, 2) | INTX_DISABLE);
    expect(cfg.read(slot, COMMAND, 2) & INTX_DISABLE).toBe(INTX_DISABLE);
    fn.setIntxLevel(true);
    expect(line.levels).toEqual([]);
    expect(cfg.read(slot, STATUS, 2) & PCI_STATUS_INTERRUPT).toBe(PCI_STATUS_INTERRUPT);
    // A byte write to the command register's high byte reaches the bit too.
    cfg.write(slot, COMMAND + 1, 1, 0);
    expect(line.levels).toEqual([true]);
    cfg.write(slot, COMMAND, 4, (cfg.read(slot, COMMAND, 2) | INTX_DISABLE) >>> 0);
    expect(line.levels).toEqual([true, false]);
    expect(fn.intxPending).toBe(true);
  });

  it('an enabled MSI-X capability keeps INTx# low; disabling it with the interrupt still pending re-asserts', () => {
    const { fn, cfg, slot, line, msix } = intxFunction({ msix: true });
    fn.setIntxLevel(true);
    expect(line.levels).toEqual([true]);
    const control = msix!.capabilityOffset + 2;
    cfg.write(slot, control, 2, cfg.read(slot, control, 2) | 0x8000);
    expect(msix!.enabled).toBe(true);
    expect(line.levels).toEqual([true, false]);
    fn.setIntxLevel(false);
    fn.setIntxLevel(true);
    expect(line.levels).toEqual([true, false]);
    cfg.write(slot, control, 2, cfg.read(slot, control, 2) & ~0x8000);
    expect(line.levels).toEqual([true, false, true]);
  });

  it('reset clears Interrupt Status and drops the line', () => {
    const { fn, cfg, slot, line } = intxFunction();
    fn.setIntxLevel(true);
    fn.reset();
    expect(line.level).toBe(false);
    expect(cfg.read(slot, STATUS, 2) & PCI_STATUS_INTERRUPT).toBe(0);
  });

  it('refuses to connect INTx to a function without an interrupt pin', () => {
    const fn = new PciFunction('no-pin', { vendorId: 0x1234, deviceId: 0x2, classCode: 0xff0000 });
    expect(() => fn.connectIntx(new LevelLog())).toThrow(/no-pin: no interrupt pin/);
  });
});

describe('INTx routing', () => {
  it('puts slot N INTA# on IOAPIC pin 16 + N mod 8, rotating with the pin', () => {
    expect(pciIntxGsi(0)).toBe(PCI_INTX_FIRST_GSI);
    expect([1, 2, 7, 8, 9, 31].map((d) => pciIntxGsi(d))).toEqual([17, 18, 23, 16, 17, 23]);
    expect([1, 2, 3, 4].map((p) => pciIntxGsi(3, p))).toEqual([19, 20, 21, 22]);
    expect(() => pciIntxGsi(32)).toThrow(/device 32/);
    expect(() => pciIntxGsi(1, 5)).toThrow(/pin 5/);
  });

  it('ORs the sources sharing a pin: the GSI falls only when the last one de-asserts', () => {
    const calls: [number, boolean][] = [];
    const controller: InterruptController = { setIrq: (gsi, level) => calls.push([gsi, level]) };
    const router = new PciIntxRouter(controller);
    const a = router.lineFor(1);
    const b = router.lineFor(9); // same pin as slot 1
    const c = router.lineFor(2);
    a.set(true);
    b.set(true);
    b.set(true); // repeated level: counted once
    c.set(true);
    a.set(false);
    expect(router.isAsserted(17)).toBe(true);
    b.set(false);
    c.set(false);
    expect(calls).toEqual([[17, true], [18, true], [17, false], [18, false]]);
    expect(router.isAsserted(17)).toBe(false);
  });
});

/**
 * virtio-rng on a VirtioPciBus whose interrupts go to the TypeScript router: the IOAPIC pin of the slot is
 * programmed as Linux does for a PCI IRQ (level, active-low, vector 0x31, CPU 0), so a delivery shows in the
 * LAPIC's IRR.
 */
function virtioIntxRig() {
  const m = testMachine(1);
  m.enableAll();
  m.maskPic();
  const mem = GuestMemory.ofSize(4 << 20);
  const spy = new MsiSpy();
  const bus = new VirtioPciBus(m.pio, m.mmio, mem, spy, () => {}, undefined, m.router);
  const transport = bus.add(new VirtioRng(), 'virtio-rng');
  const slot = 1;
  const gsi = pciIntxGsi(slot);
  const vector = 0x31;
  m.ioapicWrite(0x10 + 2 * gsi + 1, 0);
  m.ioapicWrite(0x10 + 2 * gsi, vector | (1 << 13) | (1 << 15));
  const cfg = new ConfigPorts(m.pio);
  const driver = new VirtioPciTestDriver(cfg, m.mmio, slot, mem, new GuestAllocator(0x10000, mem.end));
  const lapic = m.router.forCpu(0);
  /** Takes the pending interrupt as the CPU would; returns its vector or undefined. */
  const take = (): number | undefined => (lapic.hasInterrupt() ? lapic.acknowledge() : undefined);
  const eoi = (): void => m.apicWrite(0, 0xb0, 0);
  return { m, mem, spy, bus, transport, slot, gsi, vector, cfg, driver, take, eoi };
}

describe('virtio-pci INTx fallback', () => {
  it('a machine bus wires each slot to its pin and says so in the interrupt line register', () => {
    const r = virtioIntxRig();
    expect(r.cfg.read(r.slot, 0x3d, 1)).toBe(1);
    expect(r.cfg.read(r.slot, 0x3c, 1)).toBe(r.gsi);
    const second = r.bus.add(new VirtioRng(), 'virtio-rng2');
    expect(r.cfg.read(2, 0x3c, 1)).toBe(pciIntxGsi(2));
    expect(second.pci.get8(0x3d)).toBe(1);
    // Without an interrupt controller the functions have no pin (MSI-X only), as before.
    const plain = new VirtioPciBus(new Bus('pio'), new Bus('mmio'), GuestMemory.ofSize(1 << 20), r.spy, () => {});
    expect(plain.add(new VirtioRng(), 'rng').pci.get8(0x3d)).toBe(0);
  });

  it('queue completions set ISR bit 0 and assert the IOAPIC pin; the ISR read returns, clears and de-asserts', async () => {
    const r = virtioIntxRig();
    r.driver.init({ msix: false });
    const buf = r.driver.alloc.alloc(16);
    const used = await r.driver.run(0, [{ addr: buf, len: 16, write: true }], (ms) => new Promise((res) => setTimeout(res, ms)));
    expect(used.len).toBe(16);
    expect(r.transport.interruptPending).toBe(true);
    expect(r.bus.intx!.isAsserted(r.gsi)).toBe(true);
    expect(r.cfg.read(r.slot, STATUS, 2) & PCI_STATUS_INTERRUPT).toBe(PCI_STATUS_INTERRUPT);
    expect(r.take()).toBe(r.vector);
    // The handler reads the ISR: the bits come back once, the line drops, the EOI brings no second delivery.
    expect(r.driver.readIsr()).toBe(ISR_QUEUE);
    expect(r.bus.intx!.isAsserted(r.gsi)).toBe(false);
    expect(r.cfg.read(r.slot, STATUS, 2) & PCI_STATUS_INTERRUPT).toBe(0);
    expect(r.driver.readIsr()).toBe(0);
    r.eoi();
    expect(r.take()).toBeUndefined();
    expect(r.spy.messages).toEqual([]);
  });

  it('a level still asserted at EOI is delivered again (level-triggered), config changes set ISR bit 1', () => {
    const r = virtioIntxRig();
    r.driver.init({ msix: false });
    r.transport.core.configChanged();
    expect(r.take()).toBe(r.vector);
    r.eoi(); // handler did not read the ISR: the line is still up
    expect(r.take()).toBe(r.vector);
    expect(r.driver.readIsr()).toBe(ISR_CONFIG);
    r.eoi();
    expect(r.take()).toBeUndefined();
  });

  it('Interrupt Disable keeps the pin low while the ISR collects bits; clearing it delivers', () => {
    const r = virtioIntxRig();
    r.driver.init({ msix: false });
    r.cfg.write(r.slot, COMMAND, 2, r.cfg.read(r.slot, COMMAND, 2) | INTX_DISABLE);
    r.transport.core.configChanged();
    expect(r.bus.intx!.isAsserted(r.gsi)).toBe(false);
    expect(r.take()).toBeUndefined();
    expect(r.cfg.read(r.slot, STATUS, 2) & PCI_STATUS_INTERRUPT).toBe(PCI_STATUS_INTERRUPT);
    r.cfg.write(r.slot, COMMAND, 2, r.cfg.read(r.slot, COMMAND, 2) & ~INTX_DISABLE);
    expect(r.take()).toBe(r.vector);
    expect(r.driver.readIsr()).toBe(ISR_CONFIG);
  });

  it('with MSI-X enabled the pin never rises: queues use their vectors, config changes only mark the ISR', async () => {
    const r = virtioIntxRig();
    r.driver.init({ msix: true });
    const buf = r.driver.alloc.alloc(8);
    await r.driver.run(0, [{ addr: buf, len: 8, write: true }], (ms) => r.spy.wait(ms));
    r.transport.core.configChanged();
    expect(r.spy.messages.length).toBe(2);
    expect(r.bus.intx!.isAsserted(r.gsi)).toBe(false);
    expect(r.take()).toBeUndefined();
    expect(r.cfg.read(r.slot, STATUS, 2) & PCI_STATUS_INTERRUPT).toBe(0);
    // §4.1.4.5.1: the configuration bit is set whatever the interrupt mechanism; the queue bit only without MSI-X.
    expect(r.driver.readIsr()).toBe(ISR_CONFIG);
  });

  it('a device reset (status 0) drops a pending INTx', () => {
    const r = virtioIntxRig();
    r.driver.init({ msix: false });
    r.transport.core.configChanged();
    expect(r.bus.intx!.isAsserted(r.gsi)).toBe(true);
    r.driver.w8(0x14, 0);
    expect(r.bus.intx!.isAsserted(r.gsi)).toBe(false);
    expect(r.driver.readIsr()).toBe(0);
  });
});
