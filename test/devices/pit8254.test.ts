import { describe, expect, it } from 'vitest';
import { Bus } from '../../lib/machine/bus.js';
import type { IrqLine } from '../../lib/machine/irq.js';
import { Pic8259Pair } from '../../lib/devices/pic8259.js';
import { Pit8254, nsOfPitTick, pitTickAt } from '../../lib/devices/pit8254.js';
import { SpeakerPort61 } from '../../lib/devices/speaker-port61.js';
import { HostClock, ManualClock, PIT_HZ, TSC_HZ, mulDivCeil, mulDivFloor, nsFromTsc, tscFromNs } from '../../lib/devices/platform-clock.js';

/** Counts rising edges on IRQ 0. */
class EdgeCounter implements IrqLine {
  level = false;
  edges = 0;
  set(level: boolean): void {
    if (level && !this.level) this.edges++;
    this.level = level;
  }
}

function machine(): { clock: ManualClock; pit: Pit8254; pio: Bus; irq: EdgeCounter } {
  const clock = new ManualClock(1_000_000); // not at zero: start times must not matter
  const irq = new EdgeCounter();
  const pit = new Pit8254({ clock, irq0: irq });
  const pio = new Bus('pio');
  pit.attach(pio);
  new SpeakerPort61({ pit, clock }).attach(pio);
  return { clock, pit, pio, irq };
}

/** Advance to `untilNs` the way the accelerator does: slice to the next deadline, poll, repeat. */
function runUntil(clock: ManualClock, pit: Pit8254, untilNs: number): void {
  for (;;) {
    const next = pit.nextDeadlineNs();
    if (next === undefined || next > untilNs) break;
    clock.set(Math.max(clock.nowNs(), next));
    pit.poll(clock.nowNs());
  }
  clock.set(untilNs);
  pit.poll(untilNs);
}

function writeCount(pio: Bus, port: number, count: number): void {
  pio.write(port, 1, count & 0xff);
  pio.write(port, 1, count >> 8);
}

function readCount(pio: Bus, port: number): number {
  const lo = pio.read(port, 1);
  return lo | (pio.read(port, 1) << 8);
}

describe('time conversions', () => {
  it('mulDiv helpers are exact where a float product would not be', () => {
    const big = 2 ** 52 + 12345;
    expect(mulDivFloor(big, PIT_HZ, 1e9)).toBe(Number((BigInt(big) * BigInt(PIT_HZ)) / 1_000_000_000n));
    const ceil = (BigInt(big) * 1_000_000_000n + BigInt(PIT_HZ) - 1n) / BigInt(PIT_HZ);
    expect(mulDivCeil(big, 1e9, PIT_HZ)).toBe(Number(ceil));
  });

  it('PIT tick k starts exactly at nsOfPitTick(k)', () => {
    for (const k of [1, 2, 1193, 1193182, 98765432, 5e12]) {
      const t = nsOfPitTick(k);
      expect(pitTickAt(t)).toBe(k);
      expect(pitTickAt(t - 1)).toBe(k - 1);
    }
  });

  it('a paused HostClock stands still and resumes without a jump', () => {
    const clock = new HostClock();
    clock.pause();
    const a = clock.nowNs();
    expect(clock.nowNs()).toBe(a);
    clock.resume();
    expect(clock.nowNs()).toBeGreaterThanOrEqual(a);
    expect(Number.isSafeInteger(clock.nowNs())).toBe(true);
  });

  it('ManualClock refuses to go backwards', () => {
    const clock = new ManualClock(100);
    expect(() => clock.set(50)).toThrow(/at or after 100/);
    expect(() => clock.advance(-1)).toThrow(/bad step/);
  });

  it('TSC runs at TSC_HZ and round-trips', () => {
    expect(TSC_HZ).toBe(1e9);
    expect(tscFromNs(1_000_000_000)).toBe(TSC_HZ);
    expect(nsFromTsc(tscFromNs(123_456_789))).toBe(123_456_789);
  });
});

describe('8254 PIT', () => {
  it('mode 2 raises IRQ 0 once per period: 10 interrupts in 10 ms at LATCH 1193', () => {
    const { clock, pit, pio, irq } = machine();
    pio.write(0x43, 1, 0x34); // channel 0, lo/hi, mode 2 (Linux's periodic setup)
    writeCount(pio, 0x40, 1193);
    const start = clock.nowNs();
    runUntil(clock, pit, start + 10_000_000);
    const expected = Math.floor((pitTickAt(start + 10_000_000) - pitTickAt(start)) / 1193);
    expect(expected).toBe(10);
    expect(irq.edges).toBe(10);
  });

  it('mode 2 through the 8259: each tick is acknowledged as vector base + 0', () => {
    const clock = new ManualClock();
    const pic = new Pic8259Pair();
    const pio = new Bus('pio');
    pic.attach(pio);
    const pit = new Pit8254({ clock, irq0: { set: (level) => pic.setIrq(0, level) } });
    pit.attach(pio);
    for (const [port, v] of [[0x20, 0x11], [0x21, 0x20], [0x21, 4], [0x21, 1], [0x21, 0xfe]] as const) pio.write(port, 1, v);
    pio.write(0x43, 1, 0x34);
    writeCount(pio, 0x40, 11932); // HZ=100
    let ticks = 0;
    for (let t = 0; t <= 100_000_000; t += 250_000) {
      clock.set(t);
      pit.poll(t);
      while (pic.hasInterrupt()) {
        expect(pic.acknowledge()).toBe(0x20);
        pio.write(0x20, 1, 0x20);
        ticks++;
      }
    }
    expect(ticks).toBe(Math.floor(pitTickAt(100_000_000) / 11932));
    expect(ticks).toBe(9);
  });

  it('coalesces periods missed between polls into one edge', () => {
    const { clock, pit, pio, irq } = machine();
    pio.write(0x43, 1, 0x34);
    writeCount(pio, 0x40, 100);
    clock.advance(5_000_000);
    pit.poll(clock.nowNs());
    expect(irq.edges).toBe(1);
    const next = pit.nextDeadlineNs()!;
    expect(next).toBeGreaterThan(clock.nowNs());
    expect(next - clock.nowNs()).toBeLessThanOrEqual(nsOfPitTick(100) + 1);
  });

  it('mode 0 is one-shot: OUT low until the count expires, then one IRQ', () => {
    const { clock, pit, pio, irq } = machine();
    pio.write(0x43, 1, 0x30); // channel 0, lo/hi, mode 0
    expect(irq.level).toBe(false);
    const start = clock.nowNs();
    writeCount(pio, 0x40, 500);
    const fire = nsOfPitTick(pitTickAt(start) + 500);
    expect(pit.nextDeadlineNs()).toBe(fire);
    runUntil(clock, pit, fire - 1);
    expect(irq.edges).toBe(0);
    expect(pit.channelState(0).out).toBe(false);
    runUntil(clock, pit, fire + 50_000_000);
    expect(irq.edges).toBe(1);
    expect(pit.channelState(0).out).toBe(true);
    expect(pit.nextDeadlineNs()).toBeUndefined();
  });

  it('mode 4 (Linux one-shot clockevent) strobes OUT low for one tick at terminal count', () => {
    const { clock, pit, pio, irq } = machine();
    pio.write(0x43, 1, 0x38);
    const start = clock.nowNs();
    writeCount(pio, 0x40, 1000);
    expect(pit.channelState(0).out).toBe(true);
    const rise = nsOfPitTick(pitTickAt(start) + 1001);
    expect(pit.nextDeadlineNs()).toBe(rise);
    runUntil(clock, pit, rise + 10_000_000);
    expect(irq.edges).toBe(1);
  });

  it('counter latch freezes the value until both bytes are read', () => {
    const { clock, pio } = machine();
    pio.write(0x43, 1, 0x34);
    const start = clock.nowNs();
    writeCount(pio, 0x40, 0); // 65536
    clock.advance(12_345_678);
    const expected = 65536 - ((pitTickAt(clock.nowNs()) - pitTickAt(start)) % 65536);
    pio.write(0x43, 1, 0x00); // latch channel 0
    clock.advance(3_000_000);
    expect(readCount(pio, 0x40)).toBe(expected);
    // The next unlatched read sees the live counter again.
    const live = 65536 - ((pitTickAt(clock.nowNs()) - pitTickAt(start)) % 65536);
    expect(readCount(pio, 0x40)).toBe(live);
  });

  it('quick_pit_calibrate (MSB polling of channel 2) measures the TSC at 1 GHz', () => {
    const { clock, pio } = machine();
    const inb = (port: number): number => {
      clock.advance(700); // each port read costs 0.7 µs of virtual time
      return pio.read(port, 1);
    };
    const tsc = (): number => tscFromNs(clock.nowNs());
    const verifyMsb = (val: number): boolean => {
      inb(0x42);
      return inb(0x42) === val;
    };
    const expectMsb = (val: number): { ok: boolean; tsc: number; delta: number } => {
      let t = 0;
      let prev = 0;
      let count = 0;
      for (; count < 50000; count++) {
        if (!verifyMsb(val)) break;
        prev = t;
        t = tsc();
      }
      return { ok: count > 5, tsc: t, delta: tsc() - prev };
    };
    pio.write(0x61, 1, (pio.read(0x61, 1) & ~0x02) | 0x01);
    pio.write(0x43, 1, 0xb0);
    pio.write(0x42, 1, 0xff);
    pio.write(0x42, 1, 0xff);
    verifyMsb(0);
    const maxIterations = Math.floor((50 * PIT_HZ) / 1000 / 256);
    const first = expectMsb(0xff);
    expect(first.ok).toBe(true);
    let khz = 0;
    for (let i = 1; i <= maxIterations; i++) {
      const r = expectMsb(0xff - i);
      expect(r.ok).toBe(true);
      const delta = r.tsc - first.tsc;
      if (first.delta + r.delta >= delta / 2048) continue;
      expect(verifyMsb(0xfe - i)).toBe(true);
      khz = (delta * PIT_HZ) / (i * 256 * 1000);
      break;
    }
    expect(khz).toBeGreaterThan(999_000);
    expect(khz).toBeLessThan(1_001_000);
  });

  it('pit_calibrate_tsc: channel 2 OUT (port 0x61 bit 5) rises exactly after the count', () => {
    const { clock, pio } = machine();
    pio.write(0x61, 1, (pio.read(0x61, 1) & ~0x02) | 0x01); // gate high, speaker off
    expect(pio.read(0x61, 1) & 0x03).toBe(0x01);
    pio.write(0x43, 1, 0xb0); // channel 2, lo/hi, mode 0
    const latch = Math.floor(PIT_HZ / (1000 / 50));
    const start = clock.nowNs();
    writeCount(pio, 0x42, latch);
    const expiry = nsOfPitTick(pitTickAt(start) + latch);
    let polls = 0;
    while ((pio.read(0x61, 1) & 0x20) === 0) {
      clock.advance(1000);
      polls++;
    }
    expect(clock.nowNs()).toBeGreaterThanOrEqual(expiry);
    expect(clock.nowNs()).toBeLessThan(expiry + 1000);
    expect(tscFromNs(clock.nowNs()) - tscFromNs(start)).toBeGreaterThanOrEqual(50_000_000 - 1000);
    expect(polls).toBeGreaterThan(0);
  });

  it('channel 2 does not count while its gate (port 0x61 bit 0) is low in mode 0', () => {
    const { clock, pit, pio } = machine();
    pio.write(0x61, 1, 0x00);
    pio.write(0x43, 1, 0xb0);
    writeCount(pio, 0x42, 1000);
    clock.advance(5_000_000);
    expect(pit.channelState(2).count).toBe(1000);
    expect(pit.out2()).toBe(false);
    pio.write(0x61, 1, 0x01);
    clock.advance(nsOfPitTick(600));
    const c = pit.channelState(2).count;
    expect(c).toBeGreaterThanOrEqual(399);
    expect(c).toBeLessThanOrEqual(401);
    pio.write(0x61, 1, 0x00); // pause again
    clock.advance(5_000_000);
    expect(pit.channelState(2).count).toBe(c);
  });

  it('read-back returns status (OUT, null count, access, mode) before the latched count', () => {
    const { clock, pio } = machine();
    pio.write(0x43, 1, 0xb4); // channel 2, lo/hi, mode 2
    pio.write(0x43, 1, 0xe8); // read-back status only, channel 2
    expect(pio.read(0x42, 1)).toBe(0x80 | 0x40 | 0x30 | 0x04); // OUT high, null count, lo/hi, mode 2
    pio.write(0x61, 1, 0x01);
    writeCount(pio, 0x42, 3000);
    clock.advance(nsOfPitTick(10) + 1);
    pio.write(0x43, 1, 0xc8); // read-back status and count, channel 2
    expect(pio.read(0x42, 1)).toBe(0x80 | 0x30 | 0x04);
    const count = readCount(pio, 0x42);
    expect(count).toBeGreaterThanOrEqual(2989);
    expect(count).toBeLessThanOrEqual(2991);
  });

  it('single-byte access modes and BCD counting', () => {
    const { clock, pio } = machine();
    pio.write(0x43, 1, 0x91); // channel 2, LSB only, mode 0, BCD
    pio.write(0x61, 1, 0x01);
    pio.write(0x42, 1, 0x99); // 99 decimal
    clock.advance(nsOfPitTick(10) + 1);
    const v = pio.read(0x42, 1);
    expect(v === 0x89 || v === 0x88 || v === 0x90).toBe(true);
    pio.write(0x43, 1, 0xa4); // channel 2, MSB only, mode 2
    pio.write(0x42, 1, 0x10); // count 0x1000
    expect(pio.read(0x42, 1)).toBe(0x10);
  });

  it('mode 1 on channel 2: the gate rising edge starts a low pulse of count ticks', () => {
    const { clock, pit, pio } = machine();
    pio.write(0x61, 1, 0x00);
    pio.write(0x43, 1, 0xb2); // channel 2, lo/hi, mode 1
    writeCount(pio, 0x42, 100);
    clock.advance(1_000_000);
    expect(pit.out2()).toBe(true); // not triggered yet
    pio.write(0x61, 1, 0x01); // trigger
    const t0 = pitTickAt(clock.nowNs());
    clock.set(nsOfPitTick(t0 + 50));
    expect(pit.out2()).toBe(false);
    expect(pit.channelState(2).count).toBe(50);
    clock.set(nsOfPitTick(t0 + 100));
    expect(pit.out2()).toBe(true);
    pio.write(0x61, 1, 0x00);
    pio.write(0x61, 1, 0x01); // retrigger
    expect(pit.out2()).toBe(false);
  });

  it('mode 5 on channel 2: strobe one tick after count ticks from the gate trigger', () => {
    const { clock, pit, pio } = machine();
    pio.write(0x61, 1, 0x00);
    pio.write(0x43, 1, 0xba); // channel 2, lo/hi, mode 5
    writeCount(pio, 0x42, 20);
    pio.write(0x61, 1, 0x01);
    const t0 = pitTickAt(clock.nowNs());
    clock.set(nsOfPitTick(t0 + 19));
    expect(pit.out2()).toBe(true);
    clock.set(nsOfPitTick(t0 + 20));
    expect(pit.out2()).toBe(false);
    clock.set(nsOfPitTick(t0 + 21));
    expect(pit.out2()).toBe(true);
  });

  it('port 0x61 reads back speaker bits and toggles the refresh bit with time', () => {
    const { clock, pio } = machine();
    pio.write(0x61, 1, 0x03);
    expect(pio.read(0x61, 1) & 0x0f).toBe(0x03);
    const a = pio.read(0x61, 1) & 0x10;
    clock.advance(15_085);
    expect(pio.read(0x61, 1) & 0x10).not.toBe(a);
  });

  it('mode 3 square wave: OUT high for the first half of the period', () => {
    const { clock, pit, pio, irq } = machine();
    pio.write(0x43, 1, 0x36);
    const start = clock.nowNs();
    writeCount(pio, 0x40, 1000);
    const t0 = pitTickAt(start);
    clock.set(nsOfPitTick(t0 + 100));
    expect(pit.channelState(0).out).toBe(true);
    expect(pit.channelState(0).count % 2).toBe(0);
    clock.set(nsOfPitTick(t0 + 600));
    expect(pit.channelState(0).out).toBe(false);
    runUntil(clock, pit, nsOfPitTick(t0 + 5000));
    expect(irq.edges).toBe(5);
  });
});
