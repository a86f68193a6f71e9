/**
 * The 8254 programmable interval timer: three 16-bit down counters clocked at PIT_HZ (1.193182 MHz).
 *
 *   ports 0x40-0x42: counters 0-2, port 0x43: control word (write only)
 *   channel 0 OUT -> IRQ 0 (an IrqLine given at construction), channel 1 unused (DRAM refresh),
 *   channel 2 GATE and OUT are bits 0 and 5 of port 0x61 (see speaker-port61.ts).
 *
 * Counters are pure functions of virtual time: every tick of the PIT clock is tick k = floor(ns × PIT_HZ / 1e9)
 * on one global grid, so a counter read, the OUT pin and the TSC agree exactly at any instant. What is modelled:
 * modes 0-5 (6 and 7 alias 2 and 3), access modes LSB / MSB / LSB-then-MSB with separate read and write byte
 * flip-flops, the counter-latch command, the read-back command with status (OUT, null count, RW, mode, BCD),
 * BCD counting (modulus 10000, values read and written as BCD), GATE behaviour per mode.
 *
 * Simplifications (documented, invisible to Linux): a count is loaded into the counting element at the instant
 * it is written rather than on the next clock edge, and a new count written to a running mode 2/3 counter
 * takes effect at once instead of at the end of the current period. In mode 3 the counter value read back
 * steps by two through each half-period (as the chip does) but odd counts are not reproduced to the clock.
 *
 * Channel 0's OUT drives its IRQ line with `set(level)`; rising edges (when the PIC or IOAPIC latches IRQ 0) are
 * produced by `poll(nowNs)`, which the accelerator calls at `nextDeadlineNs()`. Several periods missed between two
 * polls are coalesced into one edge, as lost ticks are on hardware whose IRQ is not serviced in time.
 */
import type { Bus, BusDevice } from '../machine/bus.js';
import type { IrqLine } from '../machine/irq.js';
import { PIT_HZ, NS_PER_SECOND, mulDivFloor, mulDivCeil, type PlatformClock, type TimedDevice } from './platform-clock.js';

export const PIT_PORT = 0x40;

/** PIT clock tick number at virtual time `ns`. */
export function pitTickAt(ns: number): number {
  return mulDivFloor(ns, PIT_HZ, NS_PER_SECOND);
}

/** First virtual time (ns) at which PIT tick `tick` has happened. */
export function nsOfPitTick(tick: number): number {
  return mulDivCeil(tick, NS_PER_SECOND, PIT_HZ);
}

function toBcd(v: number): number {
  return (v % 10) | (Math.floor(v / 10) % 10) << 4 | (Math.floor(v / 100) % 10) << 8 | (Math.floor(v / 1000) % 10) << 12;
}

function fromBcd(v: number): number {
  return (v & 0xf) + ((v >> 4) & 0xf) * 10 + ((v >> 8) & 0xf) * 100 + ((v >> 12) & 0xf) * 1000;
}

/** Access mode of a counter: which bytes a read or write transfers. */
const RW_LSB = 1;
const RW_MSB = 2;
const RW_WORD = 3;

class PitChannel {
  mode = 0;
  rw = RW_WORD;
  bcd = false;
  /** The count register as the guest wrote it (binary value, 0 means the full modulus). */
  count = 0;
  /** A count has been loaded into the counting element (cleared by a control word). */
  loaded = false;
  /** Modes 1 and 5: a GATE rising edge has started the count. */
  triggered = false;
  /** Ticks counted before `runningFrom` (pauses in modes 0/4 by GATE low). */
  accumulated = 0;
  /** Tick at which the current run started, or undefined when the counting element is stopped. */
  runningFrom: number | undefined;
  gate: boolean;
  nullCount = true;
  /** Output before any count is loaded: low in mode 0 after its control word, otherwise high. */
  idleOut = true;

  writeMsbNext = false;
  writeLsb = 0;
  readMsbNext = false;
  latchedBytes: number[] = [];
  latchedStatus: number | undefined;

  /**
   * For channels with an IRQ line: the tick up to which rising edges have been delivered, and the level last
   * put on the line. It starts as the power-on OUT level (high) without driving the line, so the first access
   * does not look like an edge to the PIC.
   */
  deliveredTick = 0;
  lineLevel = true;

  constructor(gate: boolean) {
    this.gate = gate;
  }

  get modulus(): number {
    return this.bcd ? 10000 : 0x10000;
  }

  /** The count with 0 meaning the full modulus. */
  get period(): number {
    return this.count === 0 ? this.modulus : this.count;
  }

  /** Modes 2 and 3 (and their aliases 6, 7). */
  get periodic(): boolean {
    return (this.mode & 3) === 2 || (this.mode & 3) === 3;
  }

  get effectiveMode(): number {
    return this.mode > 5 ? this.mode & 3 : this.mode;
  }

  elapsed(tick: number): number {
    return this.accumulated + (this.runningFrom === undefined ? 0 : Math.max(0, tick - this.runningFrom));
  }

  /** Counting has started (count loaded and, for modes 1/5, triggered). */
  get started(): boolean {
    const m = this.effectiveMode;
    return this.loaded && (m !== 1 && m !== 5 ? true : this.triggered);
  }

  /** Counter value (binary) at `tick`. */
  valueAt(tick: number): number {
    if (!this.started) return this.count;
    const e = this.elapsed(tick);
    const n = this.period;
    const m = this.modulus;
    switch (this.effectiveMode) {
      case 2:
        return n - (e % n);
      case 3: {
        const half = Math.ceil(n / 2);
        const p = e % n;
        const v = p < half ? n - 2 * p : n - 2 * (p - half);
        return Math.max(v & ~1, 2) % m;
      }
      default: // 0, 1, 4, 5 count down through zero and wrap
        return (((n - e) % m) + m) % m;
    }
  }

  outAt(tick: number): boolean {
    const mode = this.effectiveMode;
    if (!this.started) return this.idleOut;
    const e = this.elapsed(tick);
    const n = this.period;
    switch (mode) {
      case 0:
      case 1:
        return e >= n;
      case 2:
        if (!this.gate) return true;
        return e % n !== n - 1;
      case 3:
        if (!this.gate) return true;
        return e % n < Math.ceil(n / 2);
      default: // 4, 5: one tick low at terminal count
        return e !== n;
    }
  }

  /** First tick > `after` at which OUT rises, or undefined. */
  nextRisingEdge(after: number): number | undefined {
    if (!this.started || this.runningFrom === undefined) return undefined;
    const origin = this.runningFrom - this.accumulated;
    const n = this.period;
    switch (this.effectiveMode) {
      case 0:
      case 1: {
        const t = origin + n;
        return t > after ? t : undefined;
      }
      case 2:
      case 3: {
        if (!this.gate) return undefined;
        const k = Math.max(1, Math.floor((after - origin) / n) + 1);
        return origin + k * n;
      }
      default: {
        const t = origin + n + 1;
        return t > after ? t : undefined;
      }
    }
  }

  /** Control word for this channel (not a latch command). */
  program(mode: number, rw: number, bcd: boolean): void {
    this.mode = mode;
    this.rw = rw;
    this.bcd = bcd;
    this.loaded = false;
    this.triggered = false;
    this.runningFrom = undefined;
    this.accumulated = 0;
    this.nullCount = true;
    this.idleOut = mode !== 0;
    this.writeMsbNext = false;
    this.readMsbNext = false;
    this.latchedBytes = [];
    this.latchedStatus = undefined;
  }

  writeByte(value: number, tick: number): void {
    let raw: number;
    if (this.rw === RW_LSB) {
      raw = value;
    } else if (this.rw === RW_MSB) {
      raw = value << 8;
    } else if (!this.writeMsbNext) {
      this.writeLsb = value;
      this.writeMsbNext = true;
      this.nullCount = true;
      // Mode 0: writing the first byte stops the count and drives OUT low.
      if (this.effectiveMode === 0) {
        this.loaded = false;
        this.runningFrom = undefined;
        this.accumulated = 0;
        this.idleOut = false;
      }
      return;
    } else {
      raw = this.writeLsb | (value << 8);
      this.writeMsbNext = false;
    }
    this.load(this.bcd ? fromBcd(raw) % 10000 : raw, tick);
  }

  private load(count: number, tick: number): void {
    this.count = count;
    this.nullCount = false;
    this.loaded = true;
    this.accumulated = 0;
    const mode = this.effectiveMode;
    if (mode === 1 || mode === 5) {
      // Waits for a GATE trigger; a count rewritten while counting applies at the next trigger.
      return;
    }
    if (mode === 0) this.idleOut = false;
    this.runningFrom = this.gate ? tick : undefined;
  }

  setGate(level: boolean, tick: number): void {
    if (level === this.gate) return;
    this.gate = level;
    const mode = this.effectiveMode;
    if (!this.loaded) return;
    if (mode === 0 || mode === 4) {
      // GATE low suspends counting; high resumes it.
      if (!level && this.runningFrom !== undefined) {
        this.accumulated += Math.max(0, tick - this.runningFrom);
        this.runningFrom = undefined;
      } else if (level) {
        this.runningFrom = tick;
      }
    } else if (mode === 2 || mode === 3) {
      // GATE low stops the count (OUT forced high); the rising edge reloads the initial count.
      this.accumulated = 0;
      this.runningFrom = level ? tick : undefined;
    } else if (level) {
      // Modes 1 and 5: the rising edge (re)triggers.
      this.triggered = true;
      this.accumulated = 0;
      this.runningFrom = tick;
    }
  }

  latchCount(tick: number): void {
    if (this.latchedBytes.length) return; // a second latch before the first is read is ignored
    let v = this.valueAt(tick);
    if (this.bcd) v = toBcd(v);
    if (this.rw === RW_LSB) this.latchedBytes = [v & 0xff];
    else if (this.rw === RW_MSB) this.latchedBytes = [(v >> 8) & 0xff];
    else this.latchedBytes = [v & 0xff, (v >> 8) & 0xff];
  }

  latchStatus(tick: number): void {
    if (this.latchedStatus !== undefined) return;
    this.latchedStatus =
      (this.outAt(tick) ? 0x80 : 0) | (this.nullCount ? 0x40 : 0) | (this.rw << 4) | (this.mode << 1) | (this.bcd ? 1 : 0);
  }

  readByte(tick: number): number {
    if (this.latchedStatus !== undefined) {
      const s = this.latchedStatus;
      this.latchedStatus = undefined;
      return s;
    }
    const latched = this.latchedBytes.shift();
    if (latched !== undefined) return latched;
    let v = this.valueAt(tick);
    if (this.bcd) v = toBcd(v);
    if (this.rw === RW_LSB) return v & 0xff;
    if (this.rw === RW_MSB) return (v >> 8) & 0xff;
    const msb = this.readMsbNext;
    this.readMsbNext = !msb;
    return msb ? (v >> 8) & 0xff : v & 0xff;
  }
}

export interface Pit8254Options {
  clock: PlatformClock;
  /** Channel 0 OUT, wired to IRQ 0 (ISA IRQ 0: PIC IR0 and the IOAPIC pin the MP table names). */
  irq0?: IrqLine;
}

export class Pit8254 implements BusDevice, TimedDevice {
  private readonly clock: PlatformClock;
  private readonly channels: [PitChannel, PitChannel, PitChannel];
  private readonly irq0: IrqLine | undefined;

  constructor(options: Pit8254Options) {
    this.clock = options.clock;
    this.irq0 = options.irq0;
    // Channels 0 and 1 have GATE tied high; channel 2's GATE is port 0x61 bit 0 (low at reset).
    this.channels = [new PitChannel(true), new PitChannel(true), new PitChannel(false)];
  }

  attach(pio: Bus): void {
    pio.register(PIT_PORT, 4, this, 'pit');
  }

  read(offset: number, _size: number): number {
    const tick = this.syncToNow();
    if (offset >= 3) return 0xff; // the control register is write-only
    return this.channels[offset]!.readByte(tick);
  }

  write(offset: number, _size: number, value: number): void {
    const tick = this.syncToNow();
    value &= 0xff;
    if (offset < 3) {
      this.channels[offset]!.writeByte(value, tick);
      if (offset === 0) this.afterReprogram(tick);
      return;
    }
    if (offset !== 3) return;
    const select = value >> 6;
    if (select === 3) return this.readBack(value, tick);
    const ch = this.channels[select]!;
    const rw = (value >> 4) & 3;
    if (rw === 0) {
      ch.latchCount(tick);
      return;
    }
    ch.program((value >> 1) & 7, rw, (value & 1) !== 0);
    if (select === 0) this.afterReprogram(tick);
  }

  /** Channel 2 GATE (port 0x61 bit 0). */
  setGate2(level: boolean): void {
    const tick = this.syncToNow();
    this.channels[2].setGate(level, tick);
  }

  get gate2(): boolean {
    return this.channels[2].gate;
  }

  /** Channel 2 OUT (port 0x61 bit 5) at the current virtual time. */
  out2(): boolean {
    return this.channels[2].outAt(pitTickAt(this.clock.nowNs()));
  }

  /** Channel `n`'s OUT and counter value now (inspection and tests). */
  channelState(n: 0 | 1 | 2): { out: boolean; count: number; mode: number } {
    const tick = pitTickAt(this.clock.nowNs());
    const ch = this.channels[n];
    return { out: ch.outAt(tick), count: ch.valueAt(tick), mode: ch.mode };
  }

  nextDeadlineNs(): number | undefined {
    if (!this.irq0) return undefined;
    const ch = this.channels[0];
    const edge = ch.nextRisingEdge(ch.deliveredTick);
    return edge === undefined ? undefined : nsOfPitTick(edge);
  }

  poll(nowNs: number): void {
    if (!this.irq0) return;
    const tick = pitTickAt(nowNs);
    const ch = this.channels[0];
    if (tick < ch.deliveredTick) return;
    const edge = ch.nextRisingEdge(ch.deliveredTick);
    if (edge !== undefined && edge <= tick) {
      if (ch.lineLevel) this.irq0.set(false);
      this.irq0.set(true);
      ch.lineLevel = true;
    }
    ch.deliveredTick = tick;
    this.syncLine(ch.outAt(tick));
  }

  private syncToNow(): number {
    const now = this.clock.nowNs();
    this.poll(now);
    return pitTickAt(now);
  }

  private afterReprogram(tick: number): void {
    const ch = this.channels[0];
    ch.deliveredTick = tick;
    this.syncLine(ch.outAt(tick));
  }

  private syncLine(level: boolean): void {
    const ch = this.channels[0];
    if (!this.irq0 || ch.lineLevel === level) return;
    ch.lineLevel = level;
    this.irq0.set(level);
  }

  private readBack(value: number, tick: number): void {
    const latchCount = (value & 0x20) === 0;
    const latchStatus = (value & 0x10) === 0;
    for (let i = 0; i < 3; i++) {
      if (!(value & (2 << i))) continue;
      const ch = this.channels[i]!;
      if (latchStatus) ch.latchStatus(tick);
      if (latchCount) ch.latchCount(tick);
    }
  }
}
