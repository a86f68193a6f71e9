import { describe, expect, it } from 'vitest';
import { InterruptRouter } from '../../lib/devices/interrupt-router.js';
import { ManualClock } from '../../lib/devices/platform-clock.js';
import { testMachine } from './lapic-helpers.js';

/** An MSI address for `dest` (x86 format: 0xFEE, destination ID in bits 12-19). */
function msiAddress(dest: number, opts: { logical?: boolean; hint?: boolean } = {}): number {
  return (0xfee0_0000 | (dest << 12) | (opts.hint ? 8 : 0) | (opts.logical ? 4 : 0)) >>> 0;
}

describe('InterruptRouter', () => {
  it('decodes a physical fixed MSI to the destination LAPIC', () => {
    const m = testMachine(3);
    m.enableAll();
    const woken: number[] = [];
    m.router.onInterruptPending = (cpu) => woken.push(cpu);
    m.router.sendMsi(msiAddress(2), 0x0061);
    expect(woken).toEqual([2]);
    expect(m.router.forCpu(2).acknowledge()).toBe(0x61);
    expect([0, 1].map((c) => m.router.forCpu(c).hasInterrupt())).toEqual([false, false]);
  });

  it('decodes logical destinations, the redirection hint, and level-triggered data', () => {
    const m = testMachine(3);
    m.enableAll();
    for (let cpu = 0; cpu < 3; cpu++) m.apicWrite(cpu, 0xd0, (1 << cpu) << 24);
    m.router.sendMsi(msiAddress(0x06, { logical: true }), 0x0062);
    expect([0, 1, 2].map((c) => m.router.forCpu(c).hasInterrupt())).toEqual([false, true, true]);
    for (const c of [1, 2]) m.router.forCpu(c).acknowledge(), m.apicWrite(c, 0xb0, 0);
    // Redirection hint: one of the destinations (the lowest APIC ID at equal priority).
    m.router.sendMsi(msiAddress(0x06, { logical: true, hint: true }), 0x0063);
    expect([0, 1, 2].map((c) => m.router.forCpu(c).hasInterrupt())).toEqual([false, true, false]);
    m.router.forCpu(1).acknowledge();
    m.apicWrite(1, 0xb0, 0);
    m.router.sendMsi(msiAddress(0), 0x8000 | 0x4000 | 0x0064); // level-triggered, assert
    expect(m.apicRead(0, 0x180 + 0x30) & (1 << 4)).toBe(1 << 4); // TMR bit for 0x64
  });

  it('decodes the delivery mode from MSI data (NMI)', () => {
    const m = testMachine(2);
    m.router.sendMsi(msiAddress(1), 0x0400);
    expect(m.router.forCpu(1).hasNmi).toBe(true);
  });

  it('drops MSIs outside the 0xFEE window and reports them', () => {
    const m = testMachine(1);
    m.enableAll();
    const bad: number[] = [];
    m.router.onInvalidMsi = (address) => bad.push(address);
    m.router.sendMsi(0xfed0_0000, 0x41);
    m.router.sendMsi(0x1_fee0_0000, 0x41);
    expect(bad).toEqual([0xfed0_0000, 0x1_fee0_0000]);
    expect(m.router.forCpu(0).hasInterrupt()).toBe(false);
  });

  it('feeds ISA IRQs to both the PIC and the IOAPIC, GSIs 16-23 only to the IOAPIC', () => {
    const m = testMachine(1);
    for (const [port, v] of [[0x20, 0x11], [0x21, 0x30], [0x21, 4], [0x21, 1], [0x21, 0]] as const) m.pio.write(port, 1, v);
    m.router.setIrq(3, true);
    expect(m.router.pic.state.irr & 0x08).toBe(0x08);
    m.enableAll();
    m.ioapicWrite(0x10 + 2 * 20, 0x8000 | 0x70); // pin 20 level
    m.router.setIrq(20, true);
    expect(m.ioapicRead(0x10 + 2 * 20) & 0x4000).toBe(0x4000);
    expect(() => m.router.setIrq(24, true)).toThrow(/GSI 24/);
  });

  it('identity ISA routing when given an empty override table', () => {
    const m = testMachine(1, { isaIrqToIoapicPin: {} });
    m.enableAll();
    m.maskPic();
    m.apicWrite(0, 0x350, 1 << 16);
    m.ioapicWrite(0x10, 0x30); // pin 0
    m.router.setIrq(0, true);
    expect(m.router.forCpu(0).acknowledge()).toBe(0x30);
  });

  it('routes MMIO at 0xfee00000 to the LAPIC of the current vCPU', () => {
    const m = testMachine(2, { apicIds: [4, 7] });
    expect(m.apicRead(0, 0x20) >>> 24).toBe(4);
    expect(m.apicRead(1, 0x20) >>> 24).toBe(7);
    m.enableAll();
    m.apicWrite(0, 0x310, 7 << 24);
    m.apicWrite(0, 0x300, 0x55);
    expect(m.router.forCpu(1).acknowledge()).toBe(0x55);
  });

  it('validates its configuration', () => {
    const clock = new ManualClock();
    expect(() => new InterruptRouter({ cpuCount: 0, clock })).toThrow(/cpuCount/);
    expect(() => new InterruptRouter({ cpuCount: 2, clock, apicIds: [1, 1] })).toThrow(/apicIds/);
    expect(() => new InterruptRouter({ cpuCount: 1, clock, isaIrqToIoapicPin: { 0: 30 } })).toThrow(/isaIrqToIoapicPin/);
    expect(() => new InterruptRouter({ cpuCount: 1, clock }).forCpu(1)).toThrow(/vCPU 1/);
  });
});
