/**
 * Virtual time for the interpreter's timer devices (PIT 8254, LAPIC timer, TSC).
 *
 * Time model
 * ----------
 * - One `PlatformClock` per machine gives `nowNs()`: virtual nanoseconds since the VM started, a non-negative
 *   integer that never goes backwards. The default `HostClock` follows the host's monotonic clock (and can be
 *   paused, e.g. while a snapshot is taken); tests and deterministic runs use `ManualClock` and advance it
 *   themselves (for example by retired instruction count).
 * - Every quantity the guest can observe is a pure function of that clock: the TSC, PIT counters and OUT pins,
 *   the LAPIC current-count register. Reading a counter twice at the same `nowNs()` gives the same value, so
 *   Linux's PIT-based TSC calibration (quick_pit_calibrate polling the channel 2 MSB, pit_calibrate_tsc polling
 *   the OUT bit in port 0x61) sees a TSC and a PIT that agree exactly.
 * - Devices never schedule anything. Each timer device exposes `nextDeadlineNs()` (the virtual time of its next
 *   interrupt, or undefined) and `poll(nowNs)` (raise every interrupt that is due at `nowNs`). The accelerator
 *   runs vCPUs in slices that end at the nearest deadline, calls `poll` between slices, and when every vCPU is
 *   halted sleeps (setTimeout, host time) until the nearest deadline or an external interrupt.
 *   `TimerGroup` gathers several devices behind that same pair of methods.
 * - Timer devices also poll themselves on register access, so a guest that reads a counter or OUT bit sees
 *   interrupts raised in the order the hardware would have raised them.
 *
 * TSC: TSC = nowNs × TSC_HZ / 1e9 with TSC_HZ = 1 GHz, so one TSC tick is one virtual nanosecond. Linux
 * (with no CPUID leaf 0x15/0x16 frequency) calibrates against the PIT and finds 1000.000 MHz, because both are
 * derived from the same clock. The conversion helpers are exact integer arithmetic for any time below 2^53 ns
 * (104 days), whatever the rates.
 */

/** Virtual nanoseconds since the VM started (non-negative integer, monotonic). */
export interface PlatformClock {
  nowNs(): number;
}

/** A device with timed interrupts, driven by the accelerator's loop. */
export interface TimedDevice {
  /** Virtual time (ns) of the next interrupt this device will raise on its own, or undefined if none is armed. */
  nextDeadlineNs(): number | undefined;
  /** Raise every interrupt due at or before `nowNs`. Idempotent for a given time; cheap when nothing is due. */
  poll(nowNs: number): void;
}

/** TSC frequency of every vCPU on the interpreter. */
export const TSC_HZ = 1_000_000_000;
/** The 8254 PIT input clock (14.31818 MHz / 12). */
export const PIT_HZ = 1_193_182;
/** LAPIC timer input ("bus") clock before the divide configuration: 1 GHz, one tick per ns (as KVM does). */
export const APIC_BUS_HZ = 1_000_000_000;
export const NS_PER_SECOND = 1_000_000_000;

/**
 * floor(value × num / den) without losing precision: value is split by den so every intermediate product
 * stays below 2^53 as long as num × den < 2^53 and the result fits in 2^53.
 */
export function mulDivFloor(value: number, num: number, den: number): number {
  const v = Math.floor(value);
  if (v < 0) return -mulDivCeil(-v, num, den);
  const q = Math.floor(v / den);
  const r = v - q * den;
  return q * num + Math.floor((r * num) / den);
}

/** ceil(value × num / den), exact under the same conditions as mulDivFloor. */
export function mulDivCeil(value: number, num: number, den: number): number {
  const v = Math.ceil(value);
  if (v < 0) return -mulDivFloor(-v, num, den);
  const q = Math.floor(v / den);
  const r = v - q * den;
  return q * num + Math.ceil((r * num) / den);
}

/** TSC value at virtual time `ns`. */
export function tscFromNs(ns: number): number {
  return mulDivFloor(ns, TSC_HZ, NS_PER_SECOND);
}

/** First virtual time (ns) at which the TSC has reached `tsc`. */
export function nsFromTsc(tsc: number): number {
  return mulDivCeil(tsc, NS_PER_SECOND, TSC_HZ);
}

/** Host monotonic time since construction, as virtual time. pause()/resume() stop virtual time in between. */
export class HostClock implements PlatformClock {
  private readonly origin = process.hrtime.bigint();
  private pausedAt: bigint | undefined;
  private pausedTotal = 0n;

  nowNs(): number {
    const now = this.pausedAt ?? process.hrtime.bigint();
    return Number(now - this.origin - this.pausedTotal);
  }

  pause(): void {
    if (this.pausedAt === undefined) this.pausedAt = process.hrtime.bigint();
  }

  resume(): void {
    if (this.pausedAt === undefined) return;
    this.pausedTotal += process.hrtime.bigint() - this.pausedAt;
    this.pausedAt = undefined;
  }
}

/** A clock that only moves when told to: tests and deterministic (instruction-counted) runs. */
export class ManualClock implements PlatformClock {
  private now: number;

  constructor(startNs = 0) {
    if (!Number.isSafeInteger(startNs) || startNs < 0) throw new RangeError(`ManualClock: bad start time ${startNs}`);
    this.now = startNs;
  }

  nowNs(): number {
    return this.now;
  }

  advance(ns: number): void {
    if (!Number.isFinite(ns) || ns < 0) throw new RangeError(`ManualClock.advance: bad step ${ns}`);
    this.now += Math.floor(ns);
  }

  set(ns: number): void {
    if (!Number.isSafeInteger(ns) || ns < this.now) {
      throw new RangeError(`ManualClock.set: ${ns} is not an integer at or after ${this.now}`);
    }
    this.now = ns;
  }
}

/** Several timed devices behind one nextDeadlineNs()/poll() pair. */
export class TimerGroup implements TimedDevice {
  private readonly devices: TimedDevice[] = [];

  add(device: TimedDevice): void {
    this.devices.push(device);
  }

  nextDeadlineNs(): number | undefined {
    let best: number | undefined;
    for (const d of this.devices) {
      const t = d.nextDeadlineNs();
      if (t !== undefined && (best === undefined || t < best)) best = t;
    }
    return best;
  }

  poll(nowNs: number): void {
    for (const d of this.devices) d.poll(nowNs);
  }
}
