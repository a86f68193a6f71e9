/**
 * Guest time on the interpreter.
 *
 * - Host time (default): the Machine's HostClock. The guest's clock tracks the wall clock, timer interrupts come
 *   at the wall-clock times the guest asked for, and a halted guest costs no host CPU (the scheduler sleeps until
 *   the next deadline). The price: how many instructions run between two ticks depends on host speed and load.
 * - Instruction time (`time: 'instructions'`): virtual time = instructions retired × nsPerInstruction, plus the
 *   idle time skipped while every vCPU was halted (the scheduler jumps straight to the next timer deadline). The
 *   same guest and input give the same instruction stream on any host; the guest's clock runs at host-dependent
 *   speed relative to the wall.
 */
import type { PlatformClock } from '../../devices/platform-clock.js';

export class InstructionClock implements PlatformClock {
  private retired: () => number = () => 0;
  /** Idle nanoseconds skipped while all vCPUs were halted. */
  private skippedNs = 0;
  private last = 0;

  constructor(readonly nsPerInstruction: number) {
    if (!(nsPerInstruction > 0 && Number.isFinite(nsPerInstruction))) {
      throw new RangeError(`interpreter accelerator: nsPerInstruction must be a positive number, got ${nsPerInstruction}`);
    }
  }

  /** Where retired instructions are counted (the sum over every vCPU). */
  countInstructions(retired: () => number): void {
    this.retired = retired;
  }

  nowNs(): number {
    const now = Math.floor(this.retired() * this.nsPerInstruction) + this.skippedNs;
    // Never backwards, even if the instruction source changes (e.g. a vCPU reset).
    if (now > this.last) this.last = now;
    return this.last;
  }

  /** Every vCPU is halted: let virtual time jump to `ns`. */
  skipTo(ns: number): void {
    const now = this.nowNs();
    if (ns > now) {
      this.skippedNs += ns - now;
      this.last = ns;
    }
  }

  /** Instructions that fit before virtual time `ns` (at least 1). */
  instructionsUntil(ns: number): number {
    return Math.max(1, Math.ceil((ns - this.nowNs()) / this.nsPerInstruction));
  }
}
