/** Guest time counted in instructions (GuestClock) and the per-vCPU CPUID view (interpCpuidFilter). */
import { describe, expect, it } from 'vitest';
import { GuestClock, interpCpuidFilter } from '../../lib/accel/interp/index.js';
import { ManualClock } from '../../lib/devices/platform-clock.js';

function clockWith(mode: 'host' | 'instructions', rate?: number): { clock: GuestClock; host: ManualClock; retire(n: number): void } {
  const host = new ManualClock();
  const clock = new GuestClock(mode, host, rate);
  let retired = 0;
  clock.countInstructions(() => retired);
  return { clock, host, retire: (n) => { retired += n; } };
}

describe('GuestClock', () => {
  it('instructions mode: time is instructions x rate, idle jumps straight to the deadline', () => {
    const { clock, retire } = clockWith('instructions', 2);
    retire(1000);
    expect(clock.nowNs()).toBe(2000);
    expect(clock.instructionsUntil(3000)).toBe(500);
    expect(clock.idleUntil(10_000)).toBe(0);
    expect(clock.nowNs()).toBe(10_000);
    expect(clock.idleUntil(undefined)).toBe(Infinity);
    retire(1);
    expect(clock.nowNs()).toBe(10_002);
  });

  it('host mode: lagging guest time catches up one deadline at a time, then sleeps until host time reaches it', () => {
    const { clock, host, retire } = clockWith('host', 10);
    retire(100); // guest 1000 ns
    host.set(50_000);
    // Deadline before host time: jump to it (not past it), no sleep.
    expect(clock.idleUntil(4000)).toBe(0);
    expect(clock.nowNs()).toBe(4000);
    // Deadline after host time: guest time catches up to host time, then sleep until the deadline.
    expect(clock.idleUntil(60_000)).toBeCloseTo(0.01, 6);
    expect(clock.nowNs()).toBe(50_000);
    // Never backwards.
    expect(clock.idleUntil(1)).toBe(0);
    expect(clock.nowNs()).toBe(50_000);
  });

  it('host mode: the rate follows the measured speed within bounds, a step at a time', () => {
    const { clock, host, retire } = clockWith('host', 10);
    clock.noteBusy();
    for (let i = 0; i < 20; i++) {
      retire(10_000_000); // 10 M instructions per 100 ms of host time: 10 ns each
      host.set(host.nowNs() + 100_000_000);
      const before = clock.nsPerInstruction;
      clock.noteBusy();
      expect(clock.nsPerInstruction / before).toBeLessThanOrEqual(1.25 + 1e-9);
      expect(clock.nsPerInstruction / before).toBeGreaterThanOrEqual(1 / 1.25 - 1e-9);
    }
    expect(clock.nsPerInstruction).toBeGreaterThan(5);
    expect(clock.nsPerInstruction).toBeLessThanOrEqual(20);
    let last = 0;
    for (let i = 0; i < 100; i++) {
      retire(7);
      const t = clock.nowNs();
      expect(t).toBeGreaterThanOrEqual(last);
      last = t;
    }
  });

  it('rejects a bad rate', () => {
    expect(() => new GuestClock('instructions', new ManualClock(), 0)).toThrow(/nsPerInstruction/);
  });
});

describe('interpCpuidFilter', () => {
  const builtIn = (leaf: number): [number, number, number, number] => (leaf === 0 ? [0x16, 1, 2, 3] : leaf === 1 ? [0x6f1, 0x0001_0800, 0x0080_2201, 0x0789_fbff] : [9, 9, 9, 9]);
  it('puts the APIC ID in leaf 1 EBX[31:24] and advertises TSC-deadline only when enabled', () => {
    const f = interpCpuidFilter({ apicId: 3, tscDeadline: true });
    const [, ebx, ecx, edx] = f(1, 0, builtIn(1));
    expect(ebx >>> 24).toBe(3);
    expect((ebx >>> 16) & 0xff).toBe(1);
    expect(ecx & (1 << 24)).not.toBe(0);
    expect(ecx & (1 << 21)).toBe(0); // no x2APIC
    expect(ecx >>> 31).toBe(0); // no hypervisor bit
    expect(edx & (1 << 9)).not.toBe(0); // APIC
    const g = interpCpuidFilter({ apicId: 0, tscDeadline: false });
    expect(g(1, 0, builtIn(1))[2] & (1 << 24)).toBe(0);
  });

  it('hides hypervisor leaves and the TSC frequency leaves', () => {
    const f = interpCpuidFilter({ apicId: 0, tscDeadline: true });
    expect(f(0x4000_0000, 0, builtIn(0x4000_0000))).toEqual([0, 0, 0, 0]);
    expect(f(0x4000_0001, 0, builtIn(0x4000_0001))).toEqual([0, 0, 0, 0]);
    expect(f(0x15, 0, builtIn(0x15))).toEqual([0, 0, 0, 0]);
    expect(f(0, 0, builtIn(0))[0]).toBe(0xd);
  });
});
