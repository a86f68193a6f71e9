/**
 * The MC146818-compatible CMOS real-time clock and NVRAM at ports 0x70 (index, bit 7 = NMI mask) and 0x71
 * (data), ISA IRQ 8.
 *
 * Time model: the RTC starts at the host's wall-clock time (read once, injectable) and then advances with the
 * machine's PlatformClock (virtual ns since VM start), like the other timers: a paused machine has a paused
 * RTC, and tests with a ManualClock are exact. Everything the guest sees is a function of that clock:
 * - the time registers (BCD or binary, 12- or 24-hour, per register B) are computed when read;
 * - the update happens at each RTC second boundary; register A's UIP bit is set for the 244 µs before it;
 * - register C's flags (PF periodic, AF alarm, UF update-ended) are worked out lazily from the clock on every
 *   access and in poll(); IRQF and the IRQ line follow the enabled ones until register C is read.
 * Setting the time (register B SET, or the divider held in reset through register A) freezes the registers so
 * the guest can write them; releasing it restarts the clock from what was written (an offset from host time).
 *
 * The platform drives timed interrupts through nextDeadlineNs()/poll(nowNs); the device never schedules.
 */
import type { BusDevice } from '../machine/bus.js';
import type { IrqLine } from '../machine/irq.js';
import { mulDivCeil, mulDivFloor, type PlatformClock, type TimedDevice } from './platform-clock.js';

export const CMOS_INDEX_PORT = 0x70;
export const CMOS_DATA_PORT = 0x71;
export const CMOS_PORT_COUNT = 2;
export const CMOS_RTC_IRQ = 8;

// Register indices.
const REG_SECONDS = 0x00;
const REG_SECONDS_ALARM = 0x01;
const REG_MINUTES = 0x02;
const REG_MINUTES_ALARM = 0x03;
const REG_HOURS = 0x04;
const REG_HOURS_ALARM = 0x05;
const REG_DAY_OF_WEEK = 0x06;
const REG_DAY_OF_MONTH = 0x07;
const REG_MONTH = 0x08;
const REG_YEAR = 0x09;
const REG_A = 0x0a;
const REG_B = 0x0b;
const REG_C = 0x0c;
const REG_D = 0x0d;
const REG_CENTURY = 0x32;
const TIME_REGISTERS = [REG_SECONDS, REG_MINUTES, REG_HOURS, REG_DAY_OF_WEEK, REG_DAY_OF_MONTH, REG_MONTH, REG_YEAR, REG_CENTURY];

// Register A.
const A_UIP = 0x80;
const A_DIVIDER_MASK = 0x70;
const A_DIVIDER_RESET = 0x60; // DV2..0 = 11x holds the divider chain in reset
const A_RATE_MASK = 0x0f;
// Register B.
const B_SET = 0x80;
const B_PIE = 0x40;
const B_AIE = 0x20;
const B_UIE = 0x10;
const B_BINARY = 0x04; // DM: 1 = binary, 0 = BCD
const B_24_HOUR = 0x02;
// Register C.
const C_IRQF = 0x80;
const C_PF = 0x40;
const C_AF = 0x20;
const C_UF = 0x10;
// Register D.
const D_VRT = 0x80; // valid RAM and time: the battery is fine

const NS_PER_SECOND = 1_000_000_000;
/** UIP rises this long before each update. */
const UIP_LEAD_NS = 244_000;
/** After the divider leaves reset, the first update comes half a second later. */
const DIVIDER_RESTART_NS = 500_000_000;
/** An alarm with don't-care fields matches somewhere in any day; checking more seconds than this adds nothing. */
const SECONDS_PER_DAY = 86_400;

export interface CmosRtcOptions {
  /** The machine's virtual clock (ns since VM start); the RTC advances with it. */
  clock: PlatformClock;
  /** ISA IRQ 8. */
  irq?: IrqLine;
  /** The wall-clock time (ms since the Unix epoch, UTC) the RTC starts at; default Date.now(). */
  wallClockMs?: () => number;
  /** Guest RAM below 4 GiB and above 4 GiB, in bytes, reported in the firmware memory-size bytes. */
  memoryBelow4G?: number;
  memoryAbove4G?: number;
}

export class CmosRtc implements TimedDevice {
  /** Port 0x70 (write: index and NMI mask) and 0x71 (data): register as one 2-port range at 0x70. */
  readonly ports: BusDevice;

  private readonly clock: PlatformClock;
  private readonly irq: IrqLine | undefined;
  private readonly ram = new Uint8Array(128);
  private index = 0;
  private nmiDisabled = false;

  // The RTC second `originSec` (Unix seconds, UTC) began at virtual time `originNs`.
  private originSec: number;
  private originNs: number;
  private halted = false;
  private lastEvalNs: number;
  private flags = 0; // PF | AF | UF
  private irqLevel = false;

  constructor(options: CmosRtcOptions) {
    this.clock = options.clock;
    this.irq = options.irq;
    const now = this.clock.nowNs();
    const wallMs = Math.floor((options.wallClockMs ?? Date.now)());
    if (!Number.isSafeInteger(wallMs) || wallMs < 0) throw new RangeError(`CmosRtc wallClockMs: bad time ${wallMs}`);
    this.originSec = Math.floor(wallMs / 1000);
    this.originNs = now - (wallMs % 1000) * 1_000_000;
    this.lastEvalNs = now;
    this.ram[REG_A] = 0x26; // 32.768 kHz time base, 1024 Hz periodic rate (what PC firmware programs)
    this.ram[REG_B] = B_24_HOUR; // BCD, 24-hour
    this.ram[REG_D] = D_VRT;
    this.setMemorySize(options.memoryBelow4G ?? 0, options.memoryAbove4G ?? 0);
    this.ports = {
      read: (offset) => (offset === 1 ? this.readData() : 0xff), // the index port is write-only
      write: (offset, _size, value) => {
        if (offset === 0) this.writeIndex(value & 0xff);
        else if (offset === 1) this.writeData(value & 0xff);
      },
    };
  }

  /** True while the guest has NMIs masked (port 0x70 bit 7). */
  get nmiMasked(): boolean {
    return this.nmiDisabled;
  }

  /** The RTC's current time (what the guest would read), for logs and tests. */
  currentTime(): Date {
    return new Date(this.secondsAt(this.clock.nowNs()) * 1000);
  }

  // ---------------------------------------------------------------- ports

  private writeIndex(value: number): void {
    this.nmiDisabled = (value & 0x80) !== 0;
    this.index = value & 0x7f;
  }

  private readData(): number {
    const reg = this.index;
    const now = this.clock.nowNs();
    switch (reg) {
      case REG_A:
        return (this.ram[REG_A]! & ~A_UIP) | (this.updateInProgress(now) ? A_UIP : 0);
      case REG_C: {
        this.advance(now);
        const value = this.flags | (this.irqLevel ? C_IRQF : 0);
        this.flags = 0;
        this.updateIrq();
        return value;
      }
      case REG_D:
        return D_VRT;
    }
    if (!this.halted && TIME_REGISTERS.includes(reg)) this.storeTime(this.secondsAt(now));
    return this.ram[reg]!;
  }

  private writeData(value: number): void {
    const reg = this.index;
    const now = this.clock.nowNs();
    switch (reg) {
      case REG_A:
        this.advance(now);
        this.ram[REG_A] = value & ~A_UIP;
        this.updateHalt(now, REG_A);
        this.updateIrq();
        return;
      case REG_B: {
        this.advance(now);
        // Setting SET also clears UIE (no update-ended interrupts while the time is being set).
        this.ram[REG_B] = value & B_SET ? value & ~B_UIE : value;
        this.updateHalt(now, REG_B);
        this.updateIrq();
        return;
      }
      case REG_C:
      case REG_D:
        return; // read-only
    }
    if (TIME_REGISTERS.includes(reg) && !this.halted) {
      // A write while the clock runs takes effect at once, keeping the position within the second.
      this.advance(now);
      const sec = this.secondsAt(now);
      const secondStartNs = this.originNs + (sec - this.originSec) * NS_PER_SECOND;
      this.storeTime(sec);
      this.ram[reg] = value;
      this.originSec = this.parseTime();
      this.originNs = secondStartNs;
      return;
    }
    this.ram[reg] = value; // NVRAM, alarms, or time registers while halted
  }

  // ---------------------------------------------------------------- time keeping

  private secondsAt(nowNs: number): number {
    if (this.halted) return this.parseTime();
    return this.originSec + Math.floor((nowNs - this.originNs) / NS_PER_SECOND);
  }

  /** Index of the RTC second running at `nowNs`, counted from originSec. */
  private secondIndexAt(nowNs: number): number {
    return Math.floor((nowNs - this.originNs) / NS_PER_SECOND);
  }

  private dividerInReset(): boolean {
    return (this.ram[REG_A]! & A_DIVIDER_RESET) === A_DIVIDER_RESET;
  }

  private updateInProgress(nowNs: number): boolean {
    if (this.halted) return false;
    const intoSecond = nowNs - this.originNs - this.secondIndexAt(nowNs) * NS_PER_SECOND;
    return NS_PER_SECOND - intoSecond <= UIP_LEAD_NS;
  }

  /**
   * Enter or leave the halted state after a write to register A or B (flags already advanced to nowNs).
   * Leaving it restarts the clock from the registers: a full second to the first update after SET is
   * cleared, half a second after the divider leaves reset (register A).
   */
  private updateHalt(nowNs: number, writtenRegister: typeof REG_A | typeof REG_B): void {
    const shouldHalt = (this.ram[REG_B]! & B_SET) !== 0 || this.dividerInReset();
    if (shouldHalt === this.halted) return;
    if (shouldHalt) {
      this.storeTime(this.secondsAt(nowNs)); // freeze what the guest will read and overwrite
      this.halted = true;
      return;
    }
    this.halted = false;
    this.originSec = this.parseTime();
    this.originNs = writtenRegister === REG_A ? nowNs - DIVIDER_RESTART_NS : nowNs;
    this.lastEvalNs = nowNs;
  }

  /** Write the time registers for Unix second `sec` in the current format. */
  private storeTime(sec: number): void {
    const d = new Date(sec * 1000);
    const year = d.getUTCFullYear();
    this.ram[REG_SECONDS] = this.encode(d.getUTCSeconds());
    this.ram[REG_MINUTES] = this.encode(d.getUTCMinutes());
    this.ram[REG_HOURS] = this.encodeHour(d.getUTCHours());
    this.ram[REG_DAY_OF_WEEK] = this.encode(d.getUTCDay() + 1);
    this.ram[REG_DAY_OF_MONTH] = this.encode(d.getUTCDate());
    this.ram[REG_MONTH] = this.encode(d.getUTCMonth() + 1);
    this.ram[REG_YEAR] = this.encode(year % 100);
    this.ram[REG_CENTURY] = this.encode(Math.floor(year / 100) % 100);
  }

  /** The time in the registers as Unix seconds. Out-of-range fields roll over (as Date does) instead of failing. */
  private parseTime(): number {
    const d = new Date(0);
    // setUTCFullYear, not Date.UTC: Date.UTC maps years 0..99 to 1900..1999.
    d.setUTCFullYear(
      this.decode(this.ram[REG_CENTURY]!) * 100 + this.decode(this.ram[REG_YEAR]!),
      this.decode(this.ram[REG_MONTH]!) - 1,
      this.decode(this.ram[REG_DAY_OF_MONTH]!),
    );
    d.setUTCHours(this.decodeHour(this.ram[REG_HOURS]!), this.decode(this.ram[REG_MINUTES]!), this.decode(this.ram[REG_SECONDS]!));
    return Math.floor(d.getTime() / 1000);
  }

  private binary(): boolean {
    return (this.ram[REG_B]! & B_BINARY) !== 0;
  }

  private encode(value: number): number {
    return this.binary() ? value : ((Math.floor(value / 10) % 10) << 4) | value % 10;
  }

  private decode(reg: number): number {
    return this.binary() ? reg : (reg >> 4) * 10 + (reg & 0x0f);
  }

  private encodeHour(hour24: number): number {
    if (this.ram[REG_B]! & B_24_HOUR) return this.encode(hour24);
    const pm = hour24 >= 12;
    const hour12 = hour24 % 12 === 0 ? 12 : hour24 % 12;
    return this.encode(hour12) | (pm ? 0x80 : 0);
  }

  private decodeHour(reg: number): number {
    if (this.ram[REG_B]! & B_24_HOUR) return this.decode(reg);
    const hour12 = this.decode(reg & 0x7f) % 12; // 12 AM is hour 0
    return reg & 0x80 ? hour12 + 12 : hour12;
  }

  // ---------------------------------------------------------------- interrupts

  /** Periodic-interrupt period as an exact fraction num/den of nanoseconds, or undefined when off. */
  private periodicPeriod(): { num: number; den: number } | undefined {
    if (this.dividerInReset()) return undefined;
    const rate = this.ram[REG_A]! & A_RATE_MASK;
    if (rate === 0) return undefined;
    // Rates 1 and 2 divide the 32.768 kHz base by 2^7 and 2^8; rates 3..15 by 2^(rate-1).
    const shift = rate <= 2 ? rate + 6 : rate - 1;
    // 1e9 * 2^shift / 2^15 ns = 1953125 * 2^(shift-6) ns.
    return shift >= 6 ? { num: 1953125 * 2 ** (shift - 6), den: 1 } : { num: 1953125, den: 2 ** (6 - shift) };
  }

  /** Work out every flag event in (lastEvalNs, nowNs]. */
  private advance(nowNs: number): void {
    if (nowNs <= this.lastEvalNs) return;
    const from = this.lastEvalNs;
    this.lastEvalNs = nowNs;
    const period = this.periodicPeriod();
    if (period) {
      // Periodic ticks are phase-locked to the second boundaries (same divider chain).
      const ticks = (t: number): number => Math.floor(mulDivFloor(t - this.originNs, period.den, period.num));
      if (ticks(nowNs) > ticks(from)) this.flags |= C_PF;
    }
    if (!this.halted) {
      const first = this.secondIndexAt(from) + 1;
      const last = this.secondIndexAt(nowNs);
      if (last >= first) {
        this.flags |= C_UF;
        for (let k = Math.max(first, last - SECONDS_PER_DAY + 1); k <= last; k++) {
          if (this.alarmMatches(this.originSec + k)) {
            this.flags |= C_AF;
            break;
          }
        }
      }
    }
    this.updateIrq();
  }

  private alarmMatches(sec: number): boolean {
    const field = (alarm: number, actual: number): boolean => (alarm & 0xc0) === 0xc0 || alarm === actual;
    const mod = (a: number, n: number): number => ((a % n) + n) % n; // times before 1970 are negative
    const s = mod(sec, 60);
    const m = mod(Math.floor(sec / 60), 60);
    const h = mod(Math.floor(sec / 3600), 24);
    return (
      field(this.ram[REG_SECONDS_ALARM]!, this.encode(s)) &&
      field(this.ram[REG_MINUTES_ALARM]!, this.encode(m)) &&
      field(this.ram[REG_HOURS_ALARM]!, this.encodeHour(h))
    );
  }

  private updateIrq(): void {
    const enabled = this.ram[REG_B]! & (B_PIE | B_AIE | B_UIE);
    // B's enable bits line up with C's flag bits (PIE/PF 0x40, AIE/AF 0x20, UIE/UF 0x10).
    const level = (this.flags & enabled) !== 0;
    if (level === this.irqLevel) return;
    this.irqLevel = level;
    this.irq?.set(level);
  }

  nextDeadlineNs(): number | undefined {
    if (this.irqLevel) return undefined; // IRQF stays set until register C is read: nothing new to raise
    const b = this.ram[REG_B]!;
    let next: number | undefined;
    const period = this.periodicPeriod();
    if (b & B_PIE && period) {
      const tick = Math.floor(mulDivFloor(this.lastEvalNs - this.originNs, period.den, period.num)) + 1;
      next = this.originNs + mulDivCeil(tick, period.num, period.den);
    }
    if (b & (B_UIE | B_AIE) && !this.halted) {
      const boundary = this.originNs + (this.secondIndexAt(this.lastEvalNs) + 1) * NS_PER_SECOND;
      if (next === undefined || boundary < next) next = boundary;
    }
    return next;
  }

  poll(nowNs: number): void {
    this.advance(nowNs);
  }

  // ---------------------------------------------------------------- firmware bytes

  /** The memory-size bytes PC firmware leaves in CMOS (bytes; what SeaBIOS and old kernels read). */
  private setMemorySize(below4G: number, above4G: number): void {
    for (const [name, v] of [['memoryBelow4G', below4G], ['memoryAbove4G', above4G]] as const) {
      if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`CmosRtc ${name}: ${v} is not a byte count`);
    }
    const KiB = 1024;
    const MiB = 1024 * KiB;
    const base = 640; // KiB of conventional memory
    this.ram[0x15] = base & 0xff;
    this.ram[0x16] = base >> 8;
    const extendedKiB = Math.min(Math.max(0, Math.floor((below4G - MiB) / KiB)), 0xffff); // 1 MiB .. 64 MiB
    this.ram[0x17] = this.ram[0x30] = extendedKiB & 0xff;
    this.ram[0x18] = this.ram[0x31] = extendedKiB >> 8;
    const above16M = Math.min(Math.max(0, Math.floor((below4G - 16 * MiB) / (64 * KiB))), 0xffff); // 64 KiB units
    this.ram[0x34] = above16M & 0xff;
    this.ram[0x35] = above16M >> 8;
    const high = Math.min(Math.floor(above4G / (64 * KiB)), 0xffffff);
    this.ram[0x5b] = high & 0xff;
    this.ram[0x5c] = (high >> 8) & 0xff;
    this.ram[0x5d] = high >> 16;
  }
}
