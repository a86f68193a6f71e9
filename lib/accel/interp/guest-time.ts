/**
 * Guest time on the interpreter: virtual time advanced by retired instructions.
 *
 * Why not host time directly: the guest measures time with tight loops (Linux calibrates the TSC by polling the
 * PIT through port 0x61 and rejects the result if one loop iteration takes 10x longer than another, "SMI
 * detected"). On the interpreter an iteration that spans an event-loop yield or a GC pause takes thousands of times
 * longer than the others, so with host time the calibration fails, the TSC is marked unstable and Linux falls back
 * to jiffies — and jiffies then lag, because timer ticks that fall inside one slice are merged. With time counted
 * in instructions, every guest-visible clock (TSC, PIT, LAPIC timer) moves smoothly with the code that observes it,
 * and timer interrupts land exactly where their deadline falls in the instruction stream.
 *
 * Two modes:
 * - 'host' (default): instruction-paced, host-synchronized. The ns-per-instruction rate follows the measured
 *   interpreter speed (re-estimated over busy stretches of >= PACE_WINDOW_NS, changed gradually), with a
 *   correction that pulls guest time towards host time; when every vCPU is halted the scheduler sleeps on a host
 *   timer until host time reaches the next deadline (guest time that lags is first caught up deadline by
 *   deadline). So guest time tracks wall time whenever the guest idles (the guest's clock stays right, sleeps
 *   take as long as they should, an idle guest costs no CPU) while staying smooth at instruction granularity;
 *   the rate is capped (MAX_HOST_RATE), so under sustained load guest time runs slow. The reference is the
 *   Machine's HostClock, so pausing the machine pauses guest time too.
 * - 'instructions': a fixed rate (default 1 ns per instruction) and idle time skipped at once: the same guest and
 *   input give the same instruction stream and the same interrupt timing on any host (deterministic runs).
 */
import type { PlatformClock } from '../../devices/platform-clock.js';

export type GuestTimeMode = 'host' | 'instructions';

/** Busy host time over which the interpreter's speed is measured before the rate is adjusted. */
export const PACE_WINDOW_NS = 50_000_000;
/** Fastest virtual CPU: 1 G instructions per virtual second. */
const MIN_RATE = 1;
/**
 * Slowest virtual CPU in host mode: 50 M instructions per virtual second. A slower virtual CPU (the interpreter's
 * real speed is a few M/s) would keep interrupts disabled for whole timer periods during long IF=0 stretches
 * (printk to the serial console, for one) and the guest would lose PIT ticks; with no HPET or ACPI PM timer,
 * Linux's clocksource watchdog then compares the TSC against lagging jiffies and declares the TSC unstable.
 * When the interpreter is slower than this, guest time lags host time while the guest is busy and catches up,
 * deadline by deadline (no tick skipped), as soon as it idles.
 */
export const MAX_HOST_RATE = 20;
/** Largest change of the rate per adjustment (a rate step inside a calibration loop must stay small). */
const MAX_RATE_STEP = 1.25;
/** Guest time more than this behind host time is caught up by running guest time faster (at most 2x). */
const CATCH_UP_HORIZON_NS = 1_000_000_000;

export class GuestClock implements PlatformClock {
  private retired: () => number = () => 0;
  private baseNs = 0;
  private baseRetired = 0;
  private last = 0;
  private rate: number;
  // Pacing window (host mode): host time and instruction count when the current busy stretch started.
  private windowHostNs = NaN;
  private windowRetired = 0;

  constructor(readonly mode: GuestTimeMode, private readonly host: PlatformClock, nsPerInstruction?: number) {
    const rate = nsPerInstruction ?? (mode === 'host' ? MAX_HOST_RATE : 1);
    if (!(rate > 0 && Number.isFinite(rate))) {
      throw new RangeError(`interpreter accelerator: nsPerInstruction must be a positive number, got ${nsPerInstruction}`);
    }
    this.rate = rate;
  }

  /** Where retired instructions are counted (the sum over every vCPU; must never decrease). */
  countInstructions(retired: () => number): void {
    this.retired = retired;
    this.baseRetired = retired();
  }

  get nsPerInstruction(): number {
    return this.rate;
  }

  nowNs(): number {
    const now = this.baseNs + Math.floor((this.retired() - this.baseRetired) * this.rate);
    if (now > this.last) this.last = now;
    return this.last;
  }

  /** Virtual time jumps forward to `ns` (never backwards). */
  skipTo(ns: number): void {
    const now = this.nowNs();
    if (ns <= now) return;
    this.baseNs += ns - now;
    this.last = ns;
  }

  /** Instructions that fit before virtual time `ns` (at least 1). */
  instructionsUntil(ns: number): number {
    return Math.max(1, Math.ceil((ns - this.nowNs()) / this.rate));
  }

  /** The vCPUs ran guest code: re-estimate the rate once a busy window is complete (host mode). */
  noteBusy(): void {
    if (this.mode !== 'host') return;
    const h = this.host.nowNs();
    const r = this.retired();
    if (Number.isNaN(this.windowHostNs)) {
      this.windowHostNs = h;
      this.windowRetired = r;
      return;
    }
    const dh = h - this.windowHostNs;
    const dr = r - this.windowRetired;
    if (dh < PACE_WINDOW_NS || dr <= 0) return;
    const measured = dh / dr;
    const behind = h - this.nowNs();
    const correction = Math.min(2, Math.max(0.5, 1 + behind / CATCH_UP_HORIZON_NS));
    const target = Math.min(MAX_HOST_RATE, Math.max(MIN_RATE, measured * correction));
    this.setRate(Math.min(this.rate * MAX_RATE_STEP, Math.max(this.rate / MAX_RATE_STEP, target)));
    this.windowHostNs = h;
    this.windowRetired = r;
  }

  /**
   * Every vCPU is halted until `deadline` (guest ns, undefined: until an interrupt): the busy window ends, and
   * guest time moves on. Returns how long to sleep on a host timer (ms; 0 = run again at once).
   * - instructions mode: straight to the deadline.
   * - host mode: if guest time lags host time, straight to the deadline if that is not past host time (catching
   *   up one deadline at a time, so no periodic tick is merged), else to host time; then sleep until host time
   *   reaches the deadline.
   */
  idleUntil(deadline: number | undefined): number {
    this.windowHostNs = NaN;
    if (this.mode === 'instructions') {
      if (deadline === undefined) return Infinity;
      this.skipTo(deadline);
      return 0;
    }
    const h = this.host.nowNs();
    if (deadline !== undefined && deadline <= h) {
      this.skipTo(deadline);
      return 0;
    }
    this.skipTo(h);
    return deadline === undefined ? Infinity : (deadline - h) / 1e6;
  }

  private setRate(rate: number): void {
    this.baseNs = this.nowNs();
    this.baseRetired = this.retired();
    this.rate = rate;
  }
}
