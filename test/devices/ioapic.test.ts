import { describe, expect, it } from 'vitest';
import { IoApic } from '../../lib/devices/ioapic.js';
import type { ApicMessage } from '../../lib/devices/lapic.js';
import { Pit8254 } from '../../lib/devices/pit8254.js';
import { irqLine } from '../../lib/machine/irq.js';
import { IOAPIC, testMachine } from './lapic-helpers.js';

const MASK = 1 << 16;
const LEVEL = 1 << 15;
const REMOTE_IRR = 1 << 14;
const LOGICAL = 1 << 11;
const EOI = 0xb0;

/** IOREGSEL index of redirection entry `pin` (low dword; +1 for the high dword). */
const rte = (pin: number): number => 0x10 + 2 * pin;

describe('IOAPIC', () => {
  it('reports ID, version 0x11 with 24 entries, arbitration ID, and resets every entry masked', () => {
    const m = testMachine(2);
    expect(m.ioapicRead(0x00)).toBe(2 << 24); // default ID = CPU count
    expect(m.ioapicRead(0x01)).toBe(0x0017_0011);
    expect(m.ioapicRead(0x02)).toBe(2 << 24);
    for (let pin = 0; pin < 24; pin++) expect(m.ioapicRead(rte(pin)) & MASK).toBe(MASK);
    m.ioapicWrite(0x00, 0x0f00_0000);
    expect(m.ioapicRead(0x00)).toBe(0x0f00_0000);
    m.mmio.write(IOAPIC, 1, 0x01);
    expect(m.mmio.read(IOAPIC, 4)).toBe(0x01); // IOREGSEL reads back
  });

  it('edge entry: setIrq -> LAPIC IRR -> acknowledge gives the programmed vector', () => {
    const m = testMachine(2);
    m.enableAll();
    m.maskPic();
    m.ioapicWrite(rte(4) + 1, 1 << 24); // physical destination APIC 1
    m.ioapicWrite(rte(4), 0x41);
    expect(m.ioapicRead(rte(4))).toBe(0x41);
    m.router.setIrq(4, true);
    const cpu1 = m.router.forCpu(1);
    expect(m.router.forCpu(0).hasInterrupt()).toBe(false);
    expect(cpu1.hasInterrupt()).toBe(true);
    expect(cpu1.acknowledge()).toBe(0x41);
    m.apicWrite(1, EOI, 0);
    // Held high: no new edge, no new interrupt.
    expect(cpu1.hasInterrupt()).toBe(false);
    m.router.setIrq(4, false);
    m.router.setIrq(4, true);
    expect(cpu1.acknowledge()).toBe(0x41);
  });

  it('masked entries deliver nothing; an edge while masked is lost', () => {
    const m = testMachine(1);
    m.enableAll();
    m.maskPic();
    m.ioapicWrite(rte(5), MASK | 0x42);
    m.router.setIrq(5, true);
    m.router.setIrq(5, false);
    m.ioapicWrite(rte(5), 0x42);
    expect(m.router.forCpu(0).hasInterrupt()).toBe(false);
  });

  it('level entry: remote IRR until the LAPIC EOI, redelivered while still asserted', () => {
    const m = testMachine(1);
    m.enableAll();
    m.maskPic();
    m.ioapicWrite(rte(10), LEVEL | 0x52);
    const cpu = m.router.forCpu(0);
    m.router.setIrq(10, true);
    expect(m.ioapicRead(rte(10)) & REMOTE_IRR).toBe(REMOTE_IRR);
    expect(cpu.acknowledge()).toBe(0x52);
    expect(cpu.hasInterrupt()).toBe(false); // remote IRR blocks redelivery before EOI
    m.apicWrite(0, EOI, 0); // level-triggered (TMR) -> EOI broadcast -> remote IRR cleared -> line still high
    expect(cpu.hasInterrupt()).toBe(true);
    expect(cpu.acknowledge()).toBe(0x52);
    m.router.setIrq(10, false); // the device was serviced
    m.apicWrite(0, EOI, 0);
    expect(m.ioapicRead(rte(10)) & REMOTE_IRR).toBe(0);
    expect(cpu.hasInterrupt()).toBe(false);
  });

  it('unmasking an asserted level entry delivers it; switching to edge clears remote IRR', () => {
    const m = testMachine(1);
    m.enableAll();
    m.maskPic();
    m.ioapicWrite(rte(11), MASK | LEVEL | 0x53);
    m.router.setIrq(11, true);
    expect(m.router.forCpu(0).hasInterrupt()).toBe(false);
    m.ioapicWrite(rte(11), LEVEL | 0x53);
    expect(m.router.forCpu(0).acknowledge()).toBe(0x53);
    expect(m.ioapicRead(rte(11)) & REMOTE_IRR).toBe(REMOTE_IRR);
    // Linux's version-0x11 fallback EOI: mask + edge, then back to level.
    m.ioapicWrite(rte(11), MASK | 0x53);
    expect(m.ioapicRead(rte(11)) & REMOTE_IRR).toBe(0);
    m.ioapicWrite(rte(11), LEVEL | 0x53); // still asserted: delivered again (IRR; 0x53 is still in service)
    expect(m.apicRead(0, 0x200 + 0x20) & (1 << (0x53 - 64))).not.toBe(0);
  });

  it('logical destination reaches the CPUs whose LDR matches', () => {
    const m = testMachine(3);
    m.enableAll();
    m.maskPic();
    for (let cpu = 0; cpu < 3; cpu++) m.apicWrite(cpu, 0xd0, (1 << cpu) << 24);
    m.ioapicWrite(rte(6) + 1, 0x04 << 24);
    m.ioapicWrite(rte(6), LOGICAL | 0x46);
    m.router.setIrq(6, true);
    expect([0, 1, 2].map((c) => m.router.forCpu(c).hasInterrupt())).toEqual([false, false, true]);
  });

  it('NMI and INIT delivery modes', () => {
    const m = testMachine(2);
    m.ioapicWrite(rte(7) + 1, 1 << 24);
    m.ioapicWrite(rte(7), 0x400); // NMI
    m.router.setIrq(7, true);
    expect(m.router.forCpu(1).hasNmi).toBe(true);
    m.ioapicWrite(rte(8) + 1, 1 << 24);
    m.ioapicWrite(rte(8), 0x500); // INIT
    m.router.setIrq(8, true);
    expect(m.events).toEqual(['init 1']);
  });

  it('ExtINT delivery lets the CPU take the 8259 vector', () => {
    const m = testMachine(1);
    m.enableAll();
    m.apicWrite(0, 0x350, 1 << 16); // LINT0 masked, as Linux leaves it with the IOAPIC in use
    for (const [port, v] of [[0x20, 0x11], [0x21, 0x30], [0x21, 4], [0x21, 1], [0x21, 0xfe]] as const) m.pio.write(port, 1, v);
    m.ioapicWrite(rte(2), 0x700); // ExtINT on pin 2 (ISA IRQ 0 by default)
    const cpu = m.router.forCpu(0);
    expect(cpu.hasInterrupt()).toBe(false);
    m.router.setIrq(0, true);
    expect(cpu.hasInterrupt()).toBe(true);
    expect(cpu.acknowledge()).toBe(0x30);
  });

  it('the PIT reaches the IOAPIC pin named by the MP table override (IRQ 0 -> pin 2)', () => {
    const m = testMachine(1);
    m.enableAll();
    m.maskPic();
    m.ioapicWrite(rte(2), 0x30);
    const pit = new Pit8254({ clock: m.clock, irq0: irqLine(m.router, 0) });
    pit.attach(m.pio);
    m.pio.write(0x43, 1, 0x34);
    m.pio.write(0x40, 1, 0x9c);
    m.pio.write(0x40, 1, 0x2e); // 11932: HZ=100
    let ticks = 0;
    const cpu = m.router.forCpu(0);
    for (let i = 0; i < 5; i++) {
      const next = pit.nextDeadlineNs()!;
      m.clock.set(next);
      pit.poll(next);
      expect(cpu.acknowledge()).toBe(0x30);
      m.apicWrite(0, EOI, 0);
      ticks++;
    }
    expect(ticks).toBe(5);
  });

  it('version 0x20 has an EOI register that clears remote IRR', () => {
    const sent: ApicMessage[] = [];
    const io = new IoApic({ id: 1, version: 0x20, deliver: (msg) => sent.push(msg) });
    io.write(0x00, 4, 0x01);
    expect(io.read(0x10, 4)).toBe(0x0017_0020);
    io.write(0x00, 4, rte(3) + 1);
    io.write(0x10, 4, 0x0300_0000);
    io.write(0x00, 4, rte(3));
    io.write(0x10, 4, LEVEL | (1 << 13) | 0x63); // level, active-low in the MP sense
    io.setIrq(3, true);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ vector: 0x63, destination: 3, levelTriggered: true, logical: false });
    io.write(0x40, 4, 0x63);
    expect(sent).toHaveLength(2); // still asserted: delivered again
    io.setIrq(3, false);
    io.write(0x40, 4, 0x63);
    expect(io.entry(3).low & REMOTE_IRR).toBe(0);
    expect(() => io.setIrq(24, true)).toThrow(/pin 24/);
  });
});
