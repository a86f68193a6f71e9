import { describe, expect, it } from 'vitest';
import { Bus } from '../../lib/machine/bus.js';
import type { IrqLine } from '../../lib/machine/irq.js';
import { ManualClock } from '../../lib/devices/platform-clock.js';
import { CMOS_INDEX_PORT, CMOS_PORT_COUNT, CmosRtc } from '../../lib/devices/cmos-rtc.js';

const MS = 1_000_000; // ns
const MiB = 1024 * 1024;
// Saturday 21 November 2026, 13:45:30.250 UTC
const START = Date.UTC(2026, 10, 21, 13, 45, 30, 250);

function rtc(options: { below?: number; above?: number; wall?: number } = {}) {
  const clock = new ManualClock(5_000 * MS); // the VM has been up for 5 s; irrelevant to the RTC's date
  const levels: boolean[] = [];
  const irq: IrqLine = { set: (l) => levels.push(l) };
  const dev = new CmosRtc({
    clock,
    irq,
    wallClockMs: () => options.wall ?? START,
    memoryBelow4G: options.below ?? 0,
    memoryAbove4G: options.above ?? 0,
  });
  const bus = new Bus('pio');
  bus.register(CMOS_INDEX_PORT, CMOS_PORT_COUNT, dev.ports, 'cmos');
  const read = (reg: number) => {
    bus.write(0x70, 1, reg);
    return bus.read(0x71, 1);
  };
  const write = (reg: number, v: number) => {
    bus.write(0x70, 1, reg);
    bus.write(0x71, 1, v);
  };
  const time = () => [0x32, 0x09, 0x08, 0x07, 0x06, 0x04, 0x02, 0x00].map(read);
  return { clock, dev, bus, read, write, time, levels };
}

describe('CMOS RTC time registers', () => {
  it('reads the injected clock in BCD, 24-hour (the PC default)', () => {
    const r = rtc();
    expect(r.read(0x0b)).toBe(0x02);
    // century, year, month, day, weekday (Saturday = 7), hours, minutes, seconds
    expect(r.time()).toEqual([0x20, 0x26, 0x11, 0x21, 0x07, 0x13, 0x45, 0x30]);
  });

  it('reads binary and 12-hour formats per register B', () => {
    const r = rtc();
    r.write(0x0b, 0x06); // binary, 24-hour
    expect(r.time()).toEqual([20, 26, 11, 21, 7, 13, 45, 30]);
    r.write(0x0b, 0x04); // binary, 12-hour: 1 PM
    expect(r.read(0x04)).toBe(0x81);
    r.write(0x0b, 0x00); // BCD, 12-hour
    expect(r.read(0x04)).toBe(0x81);
    const midnight = rtc({ wall: Date.UTC(2026, 0, 1, 0, 5, 0) });
    midnight.write(0x0b, 0x00);
    expect(midnight.read(0x04)).toBe(0x12); // 12 AM
  });

  it('advances with the platform clock, carrying across seconds, minutes and days', () => {
    const r = rtc({ wall: Date.UTC(2026, 11, 31, 23, 59, 59, 500) });
    expect(r.time()).toEqual([0x20, 0x26, 0x12, 0x31, 0x05, 0x23, 0x59, 0x59]);
    r.clock.advance(499 * MS);
    expect(r.read(0x00)).toBe(0x59);
    r.clock.advance(1 * MS);
    expect(r.time()).toEqual([0x20, 0x27, 0x01, 0x01, 0x06, 0x00, 0x00, 0x00]);
    expect(r.dev.currentTime().toISOString()).toBe('2027-01-01T00:00:00.000Z');
  });

  it('sets UIP only in the 244 µs before each update', () => {
    const r = rtc(); // 250 ms into the second
    expect(r.read(0x0a) & 0x80).toBe(0);
    r.clock.advance(750 * MS - 245_000);
    expect(r.read(0x0a) & 0x80).toBe(0);
    r.clock.advance(2_000);
    expect(r.read(0x0a) & 0x80).toBe(0x80);
    expect(r.read(0x00)).toBe(0x30); // not updated yet
    r.clock.advance(243_000);
    expect(r.read(0x0a)).toBe(0x26);
    expect(r.read(0x00)).toBe(0x31);
  });
});

describe('CMOS RTC setting the time', () => {
  it('Linux sequence (SET + divider reset, write, release): keeps an offset from host time', () => {
    const r = rtc();
    const b = r.read(0x0b);
    r.write(0x0b, b | 0x80);
    const a = r.read(0x0a);
    r.write(0x0a, a | 0x70);
    // 2000-01-01 00:00:00 (BCD); weekday Saturday
    for (const [reg, v] of [[0x00, 0], [0x02, 0], [0x04, 0], [0x06, 7], [0x07, 1], [0x08, 1], [0x09, 0], [0x32, 0x20]]) {
      r.write(reg!, v!);
    }
    r.clock.advance(3_000 * MS); // frozen while set
    expect(r.read(0x00)).toBe(0);
    r.write(0x0b, b);
    r.clock.advance(2_000 * MS); // still frozen: the divider is in reset
    expect(r.read(0x00)).toBe(0);
    r.write(0x0a, a); // divider restarts: first update half a second later
    r.clock.advance(499 * MS);
    expect(r.read(0x00)).toBe(0x00);
    r.clock.advance(1 * MS);
    expect(r.read(0x00)).toBe(0x01);
    r.clock.advance(59_000 * MS);
    expect(r.time()).toEqual([0x20, 0x00, 0x01, 0x01, 0x07, 0x00, 0x01, 0x00]);
    expect(r.dev.currentTime().toISOString()).toBe('2000-01-01T00:01:00.000Z');
  });

  it('SET alone: the clock restarts a full second after release; SET clears UIE', () => {
    const r = rtc();
    r.write(0x0b, 0x06 | 0x10); // binary, UIE
    r.write(0x0b, 0x06 | 0x10 | 0x80); // SET
    expect(r.read(0x0b)).toBe(0x86);
    r.write(0x00, 10);
    r.write(0x02, 20);
    r.write(0x04, 8);
    r.write(0x0b, 0x06);
    r.clock.advance(999 * MS);
    expect([r.read(0x04), r.read(0x02), r.read(0x00)]).toEqual([8, 20, 10]);
    r.clock.advance(1 * MS);
    expect(r.read(0x00)).toBe(11);
    expect(r.read(0x07)).toBe(21); // the date was kept
  });

  it('a time-register write while running takes effect at once, keeping the sub-second phase', () => {
    const r = rtc(); // 250 ms into second :30
    r.write(0x02, 0x10); // minutes := 10
    expect(r.time().slice(5)).toEqual([0x13, 0x10, 0x30]);
    r.clock.advance(750 * MS);
    expect(r.read(0x00)).toBe(0x31);
  });

  it('years 0..99 of a century are not mistaken for 19xx; pre-1970 times work', () => {
    const r = rtc();
    r.write(0x0b, 0x86); // SET, binary, 24h
    for (const [reg, v] of [[0x32, 0], [0x09, 5], [0x08, 3], [0x07, 1], [0x04, 0], [0x02, 0], [0x00, 0]]) r.write(reg!, v!);
    r.write(0x0b, 0x06);
    expect(r.dev.currentTime().toISOString()).toBe('0005-03-01T00:00:00.000Z');
    r.write(0x0b, 0x86);
    for (const [reg, v] of [[0x32, 19], [0x09, 60], [0x01, 30], [0x03, 0], [0x05, 0]]) r.write(reg!, v!);
    r.write(0x0b, 0x26); // AIE; alarm at 00:00:30 on 1960-03-01
    r.clock.advance(30_000 * MS);
    r.dev.poll(r.clock.nowNs());
    expect(r.dev.currentTime().toISOString()).toBe('1960-03-01T00:00:30.000Z');
    expect(r.levels).toEqual([true]);
  });

  it('treats garbage in the time registers as rollover, never as an error', () => {
    const r = rtc();
    r.write(0x0b, 0x82);
    r.write(0x08, 0x13); // month 13 (BCD) -> January next year
    r.write(0x00, 0xff); // not BCD
    r.write(0x0b, 0x02);
    expect(r.dev.currentTime().getUTCFullYear()).toBe(2027);
  });
});

describe('CMOS RTC interrupts', () => {
  it('periodic interrupt via nextDeadlineNs/poll; register C clears on read and drops IRQ 8', () => {
    const r = rtc();
    expect(r.dev.nextDeadlineNs()).toBeUndefined(); // nothing enabled
    r.write(0x0a, 0x26); // 1024 Hz
    r.write(0x0b, 0x42); // PIE
    const deadline = r.dev.nextDeadlineNs()!;
    expect(deadline).toBeGreaterThan(r.clock.nowNs());
    expect(deadline - r.clock.nowNs()).toBeLessThanOrEqual(976_563);
    r.clock.set(deadline - 1);
    r.dev.poll(r.clock.nowNs());
    expect(r.levels).toEqual([]);
    r.clock.set(deadline);
    r.dev.poll(r.clock.nowNs());
    expect(r.levels).toEqual([true]);
    expect(r.dev.nextDeadlineNs()).toBeUndefined(); // IRQF is latched until C is read
    expect(r.read(0x0c)).toBe(0xc0); // IRQF | PF
    expect(r.levels).toEqual([true, false]);
    expect(r.read(0x0c)).toBe(0x00);
    // Next tick exactly one period (976562.5 ns) after the previous one.
    const next = r.dev.nextDeadlineNs()!;
    expect(next - deadline === 976_562 || next - deadline === 976_563).toBe(true);
  });

  it('sets PF without an interrupt when PIE is off (polled), and stops at rate 0', () => {
    const r = rtc();
    r.clock.advance(2 * MS);
    expect(r.read(0x0c)).toBe(0x40 | 0x00);
    r.write(0x0a, 0x20);
    r.clock.advance(10 * MS);
    expect(r.read(0x0c) & 0x40).toBe(0);
    expect(r.levels).toEqual([]);
  });

  it('update-ended interrupt at each second boundary', () => {
    const r = rtc();
    r.write(0x0b, 0x12); // UIE
    expect(r.dev.nextDeadlineNs()).toBe(r.clock.nowNs() + 750 * MS);
    r.clock.advance(750 * MS);
    r.dev.poll(r.clock.nowNs());
    expect(r.levels).toEqual([true]);
    expect(r.read(0x0c) & ~0x40).toBe(0x90); // PF also runs (1024 Hz) but is not enabled
    expect(r.read(0x00)).toBe(0x31);
  });

  it('alarm interrupt at the programmed time, and every second with don\'t-care fields', () => {
    const r = rtc();
    r.write(0x01, 0x32); // alarm 13:45:32
    r.write(0x03, 0x45);
    r.write(0x05, 0x13);
    r.write(0x0b, 0x22); // AIE
    r.clock.advance(750 * MS); // :31
    r.dev.poll(r.clock.nowNs());
    expect(r.levels).toEqual([]);
    expect(r.read(0x0c) & ~0x40).toBe(0x10); // UF without interrupt (PF masked: it runs too)
    r.clock.advance(1000 * MS); // :32
    r.dev.poll(r.clock.nowNs());
    expect(r.levels).toEqual([true]);
    expect(r.read(0x0c) & ~0x40).toBe(0xb0);
    r.write(0x01, 0xc0);
    r.write(0x03, 0xff);
    r.write(0x05, 0xc5);
    r.clock.advance(1000 * MS);
    r.dev.poll(r.clock.nowNs());
    expect(r.read(0x0c) & 0xa0).toBe(0xa0);
  });

  it('finds an alarm crossed while nobody polled (lazy evaluation on register C read)', () => {
    const r = rtc();
    r.write(0x01, 0x00);
    r.write(0x03, 0x00);
    r.write(0x05, 0x15); // 15:00:00, about 74 minutes ahead
    r.clock.advance(2 * 3600 * 1000 * MS);
    expect(r.read(0x0c) & 0x30).toBe(0x30);
  });
});

describe('CMOS NVRAM and firmware bytes', () => {
  it('reports memory sizes like PC firmware', () => {
    const r = rtc({ below: 3 * 1024 * MiB, above: 1024 * MiB });
    expect(r.read(0x15) | (r.read(0x16) << 8)).toBe(640);
    expect(r.read(0x17) | (r.read(0x18) << 8)).toBe(0xffff); // capped at 64 MiB
    expect(r.read(0x30) | (r.read(0x31) << 8)).toBe(0xffff);
    expect(r.read(0x34) | (r.read(0x35) << 8)).toBe((3 * 1024 - 16) * 16); // 64 KiB units above 16 MiB
    expect(r.read(0x5b) | (r.read(0x5c) << 8) | (r.read(0x5d) << 16)).toBe(1024 * 16);
    const small = rtc({ below: 32 * MiB });
    expect(small.read(0x17) | (small.read(0x18) << 8)).toBe(31 * 1024);
    expect(small.read(0x34) | (small.read(0x35) << 8)).toBe(256);
    expect(() => rtc({ below: -1 })).toThrow(/memoryBelow4G/);
  });

  it('stores NVRAM bytes and the NMI mask bit; register D reports a good battery; index port reads 0xff', () => {
    const r = rtc();
    r.write(0x40, 0xa5);
    r.write(0x7f, 0x5a);
    expect([r.read(0x40), r.read(0x7f)]).toEqual([0xa5, 0x5a]);
    expect(r.read(0x0d)).toBe(0x80);
    r.write(0x0d, 0);
    expect(r.read(0x0d)).toBe(0x80);
    expect(r.dev.nmiMasked).toBe(false);
    r.bus.write(0x70, 1, 0x80 | 0x40);
    expect(r.dev.nmiMasked).toBe(true);
    expect(r.bus.read(0x71, 1)).toBe(0xa5); // index bits 0..6 still select the register
    expect(r.bus.read(0x70, 1)).toBe(0xff);
  });
});

describe('CMOS RTC under random guest accesses', () => {
  it('never throws and keeps a valid date whatever is written, and runs again after a clean set', () => {
    const r = rtc();
    let x = 777;
    const next = () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 8) & 0xffff;
    for (let i = 0; i < 20_000; i++) {
      const v = next();
      if (v & 1) r.bus.write(0x70 + ((v >> 1) & 1), 1, next() & 0xff);
      else r.bus.read(0x70 + ((v >> 1) & 1), 1);
      if (i % 100 === 0) r.clock.advance(next() * 1000);
      if (i % 500 === 0) r.dev.poll(r.clock.nowNs());
      expect(Number.isFinite(r.dev.currentTime().getTime())).toBe(true);
    }
    r.write(0x0a, 0x26);
    r.write(0x0b, 0x86); // SET, binary, 24h
    for (const [reg, v] of [[0x00, 0], [0x02, 0], [0x04, 12], [0x07, 15], [0x08, 6], [0x09, 30], [0x32, 20]]) r.write(reg!, v!);
    r.write(0x0b, 0x06);
    r.clock.advance(2_000 * MS);
    expect(r.dev.currentTime().toISOString()).toBe('2030-06-15T12:00:02.000Z');
  });
});
