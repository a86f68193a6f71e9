/**
 * Runs the interpreter's vCPUs on the JS thread without starving the event loop.
 *
 * One round: poll the timer devices, then give every runnable vCPU (in index order, so SMP interleaving is
 * deterministic for a given time source) a slice of at most SLICE_INSTRUCTIONS. Rounds repeat until YIELD_MS of
 * wall time has passed, then the loop yields (setImmediate) so console output, stdin and host timers run. When no
 * vCPU can run (all halted or waiting for a startup IPI) the loop sleeps until the next timer deadline or until
 * an interrupt is routed to a vCPU (wake()).
 *
 * Power-off: every vCPU halted with IF=0 and no NMI pending (or waiting for a SIPI that nobody can send) — the
 * state Linux leaves the machine in after `poweroff` without ACPI (guest/README.md).
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { F_IF } from '../../cpu/constants.js';
import type { Cpu, StopReason } from '../../cpu/index.js';
import type { InterruptRouter } from '../../devices/interrupt-router.js';
import type { LocalApic } from '../../devices/lapic.js';
import type { PlatformClock, TimedDevice } from '../../devices/platform-clock.js';
import type { VcpuStop } from '../accelerator.js';
import type { GuestClock } from './guest-time.js';

export interface SchedulerVcpu {
  cpu: Cpu;
  lapic: LocalApic;
  index: number;
  /** The CPU's IA32_TSC offset last copied to its LAPIC. */
  tscOffset: bigint;
}

export interface SchedulerOptions {
  vcpus: readonly SchedulerVcpu[];
  router: InterruptRouter;
  /** Guest time: what the accelerator's timers (PIT, LAPICs) and the TSC run on. */
  clock: GuestClock;
  /** PIT + LAPIC timers. */
  timers: TimedDevice;
  /** The Machine's own timed devices (CMOS RTC) and their clock. */
  machineTimers: { clock: PlatformClock; timers: TimedDevice };
  log?: ((message: string) => void) | undefined;
}

/** Instructions per vCPU slice: bounds timer-interrupt latency (~1 ms at ~20 M instructions/s). */
export const SLICE_INSTRUCTIONS = 20_000;
/** Wall time the loop runs guest code before yielding to the event loop. */
export const YIELD_MS = 8;
/** Longest sleep while idle: deadlines may move (clock paused, devices re-armed from the event loop). */
const MAX_IDLE_MS = 50;

type RoundResult = VcpuStop | 'busy' | 'idle';

/** A guest write to IA32_TSC (or the boot MSRs on reset) moved the CPU's TSC: the LAPIC must use the same one. */
function syncTscOffset(v: SchedulerVcpu): void {
  const off = v.cpu.msr.tscOffset;
  if (off !== v.tscOffset) {
    v.tscOffset = off;
    v.lapic.tscOffset = Number(off);
  }
}

export class VcpuScheduler {
  private stopping = false;
  private wakeRequested = false;
  private wakeSleeper: (() => void) | undefined;

  constructor(private readonly o: SchedulerOptions) {
    const vcpus = o.vcpus;
    o.clock.countInstructions(() => {
      let n = 0;
      for (const v of vcpus) n += v.cpu.icount;
      return n;
    });
  }

  /** Something arrived for a vCPU (interrupt, NMI, INIT, SIPI): end an idle sleep. */
  wake(_cpu: number): void {
    this.wakeRequested = true;
    const w = this.wakeSleeper;
    if (w) {
      this.wakeSleeper = undefined;
      w();
    }
  }

  requestStop(): void {
    this.stopping = true;
    for (const v of this.o.vcpus) v.cpu.requestStop();
    this.wake(-1);
  }

  async run(): Promise<VcpuStop> {
    this.stopping = false;
    for (;;) {
      const yieldAt = performance.now() + YIELD_MS;
      let idle = false;
      do {
        if (this.stopping) return { kind: 'stopped' };
        const r = this.round();
        if (typeof r === 'object') return r;
        idle = r === 'idle';
      } while (!idle && performance.now() < yieldAt);
      if (this.stopping) return { kind: 'stopped' };
      if (idle) await this.idle();
      else await yieldToEventLoop();
    }
  }

  private pollTimers(): void {
    this.o.timers.poll(this.o.clock.nowNs());
    const m = this.o.machineTimers;
    m.timers.poll(m.clock.nowNs());
  }

  private round(): RoundResult {
    this.wakeRequested = false;
    this.pollTimers();
    const { vcpus, router, clock } = this.o;
    let busy = false;
    let budget = SLICE_INSTRUCTIONS;
    const next = this.o.timers.nextDeadlineNs();
    // Slices end at the next timer deadline, so the interrupt lands where its time falls in the instruction stream.
    if (next !== undefined) budget = Math.min(budget, clock.instructionsUntil(next));
    for (const v of vcpus) {
      const { cpu, lapic } = v;
      if (lapic.waitingForSipi) continue;
      if (lapic.hasNmi && lapic.takeNmi()) cpu.nmiPending = true;
      if (cpu.halted && !cpu.nmiPending && !((cpu.flags & F_IF) && lapic.hasInterrupt())) continue;
      router.lapicMmio.currentCpu = v.index;
      syncTscOffset(v);
      let stop: StopReason;
      try {
        stop = cpu.run({ maxInstructions: budget });
      } catch (e) {
        return { kind: 'error', cpu: v.index, detail: `vCPU ${v.index} at RIP 0x${cpu.rip.toString(16)}: ${e instanceof Error ? e.stack ?? e.message : String(e)}` };
      }
      syncTscOffset(v);
      switch (stop.reason) {
        case 'count':
          busy = true;
          break;
        case 'hlt':
          break;
        case 'stop':
          if (this.stopping) return { kind: 'stopped' };
          busy = true; // an INIT/SIPI ended the slice early
          break;
        case 'shutdown':
          return { kind: 'triple-fault', cpu: v.index, detail: `vCPU ${v.index}: ${stop.detail}` };
        default:
          return { kind: 'error', cpu: v.index, detail: `vCPU ${v.index} stopped unexpectedly: ${JSON.stringify(stop)}` };
      }
      if (this.stopping) return { kind: 'stopped' };
    }
    if (busy) clock.noteBusy();
    if (busy || this.wakeRequested) return 'busy';
    if (this.poweredOff()) return { kind: 'power-off', detail: 'every vCPU halted with interrupts disabled' };
    return 'idle';
  }

  private poweredOff(): boolean {
    for (const v of this.o.vcpus) {
      if (v.lapic.waitingForSipi) continue;
      if (!v.cpu.halted || (v.cpu.flags & F_IF) || v.cpu.nmiPending || v.lapic.hasNmi) return false;
    }
    return true;
  }

  /** Every vCPU is halted: wait for the next timer deadline or a wake-up, without burning host CPU. */
  private async idle(): Promise<void> {
    const { clock, timers, machineTimers } = this.o;
    let ms = Math.min(MAX_IDLE_MS, clock.idleUntil(timers.nextDeadlineNs()));
    const rtc = machineTimers.timers.nextDeadlineNs();
    if (rtc !== undefined) ms = Math.min(ms, (rtc - machineTimers.clock.nowNs()) / 1e6);
    if (this.wakeRequested || ms <= 0) {
      await yieldToEventLoop();
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.wakeSleeper = undefined;
        resolve();
      }, ms);
      this.wakeSleeper = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
