/**
 * The MP table a machine with PCI bus 0 gets: parsed back the way Linux's mpparse walks it (checksums, bus
 * entries, I/O interrupt assignments), the PCI INTA# entries must name the PCI bus, encode device << 2 | pin,
 * say level/active-low, and point at the IOAPIC pin the VMM wires the slot to (pciIntxGsi).
 */
import { describe, expect, it } from 'vitest';
import { buildMpTable, MP_IRQ_POLARITY_ACTIVE_LOW, MP_IRQ_TRIGGER_LEVEL } from '../../lib/machine/boot/mptable.js';
import { pciIntxGsi } from '../../lib/pci/index.js';

interface IrqEntry { type: number; flags: number; bus: number; busIrq: number; apic: number; pin: number }

function parse(bytes: Uint8Array, address: number) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = (at: number, n: number): string => new TextDecoder().decode(bytes.subarray(at, at + n));
  const sum = (from: number, n: number): number => bytes.subarray(from, from + n).reduce((a, b) => (a + b) & 0xff, 0);
  expect(text(0, 4)).toBe('_MP_');
  expect(sum(0, 16)).toBe(0);
  const cfg = dv.getUint32(4, true) - address;
  expect(text(cfg, 4)).toBe('PCMP');
  const length = dv.getUint16(cfg + 4, true);
  expect(sum(cfg, length)).toBe(0);
  const count = dv.getUint16(cfg + 34, true);
  const buses: { id: number; name: string }[] = [];
  const irqs: IrqEntry[] = [];
  let ioapicId = -1;
  let p = cfg + 44;
  for (let i = 0; i < count; i++) {
    const t = bytes[p]!;
    if (t === 0) { p += 20; continue; }
    if (t === 1) buses.push({ id: bytes[p + 1]!, name: text(p + 2, 6) });
    if (t === 2) ioapicId = bytes[p + 1]!;
    if (t === 3) irqs.push({ type: bytes[p + 1]!, flags: dv.getUint16(p + 2, true), bus: bytes[p + 4]!, busIrq: bytes[p + 5]!, apic: bytes[p + 6]!, pin: bytes[p + 7]! });
    if (t > 4) throw new Error(`unknown MP entry type ${t} at ${p}`);
    p += 8;
  }
  expect(p - cfg).toBe(length);
  return { buses, irqs, ioapicId };
}

describe('MP table with a PCI bus', () => {
  it('assigns every slot INTA# (level, active-low) to the IOAPIC pin the slot is wired to', () => {
    const address = 0x9fc00;
    const { bytes, info } = buildMpTable({ cpus: 2, pci: true }, address);
    const t = parse(bytes, address);
    expect(info.pciBusId).toBe(0);
    expect(t.buses).toEqual([{ id: 0, name: 'PCI   ' }, { id: 1, name: 'ISA   ' }]);
    const pci = t.irqs.filter((e) => e.bus === 0);
    expect(pci).toHaveLength(31);
    for (const [i, e] of pci.entries()) {
      const device = i + 1;
      expect(e).toEqual({
        type: 0, // INT
        flags: MP_IRQ_POLARITY_ACTIVE_LOW | MP_IRQ_TRIGGER_LEVEL,
        bus: 0,
        busIrq: device << 2, // INTA# = pin field 0
        apic: t.ioapicId,
        pin: pciIntxGsi(device),
      });
    }
    expect(new Set(pci.map((e) => e.pin))).toEqual(new Set([16, 17, 18, 19, 20, 21, 22, 23]));
    // ISA interrupts keep their bus (1) and pins below 16, IRQ 0 on pin 2.
    const isa = t.irqs.filter((e) => e.bus === 1);
    expect(isa).toHaveLength(15);
    expect(isa.every((e) => e.pin < 16 && e.flags === 0)).toBe(true);
    expect(isa.find((e) => e.busIrq === 0)!.pin).toBe(2);
  });

  it('announces no PCI bus and no PCI interrupts without one', () => {
    const { bytes, info } = buildMpTable({ cpus: 1 }, 0x9fc00);
    const t = parse(bytes, 0x9fc00);
    expect(info.pciBusId).toBeUndefined();
    expect(t.buses).toEqual([{ id: 0, name: 'ISA   ' }]);
    expect(t.irqs.every((e) => e.pin < 16)).toBe(true);
  });
});
