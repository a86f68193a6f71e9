/**
 * The interpreter accelerator: guest RAM in plain ArrayBuffers, one lib/cpu `Cpu` per vCPU, and the PC interrupt
 * fabric (8259 pair, IOAPIC, LAPICs), the PIT and port 0x61 as TypeScript devices on the Machine's buses.
 *
 * Scheduling (vcpu-scheduler.ts does the loop): vCPUs run round-robin in slices of a bounded instruction count,
 * in a fixed order (deterministic for a given time source); timer devices are polled between slices; when every
 * vCPU is halted the loop sleeps on a host timer until the next timer deadline or until an interrupt arrives; and
 * it yields to the event loop every few milliseconds so the console, stdin and host timers keep running.
 *
 * Time (see guest-time.ts): guest time is counted in retired instructions. By default ('host') the rate follows
 * the interpreter's measured speed and idle periods resynchronize it with host time, so the guest's clock tracks
 * the wall clock; `time: 'instructions'` uses a fixed rate and skips idle time (deterministic runs).
 */
import { Cpu } from '../../cpu/index.js';
import { importBootState } from '../../cpu/boot-state.js';
import { CS } from '../../cpu/constants.js';
import type { BootCpuState } from '../../machine/boot/cpu-state.js';
import type { GuestMemory } from '../../machine/guest-memory.js';
import { CoherentGuestMemory } from './coherent-memory.js';
import type { InterruptController, MsiSink } from '../../machine/irq.js';
import { InterruptRouter } from '../../devices/interrupt-router.js';
import { Pit8254 } from '../../devices/pit8254.js';
import { SpeakerPort61 } from '../../devices/speaker-port61.js';
import { MSR_IA32_APIC_BASE } from '../../devices/lapic.js';
import { TimerGroup, tscFromNs } from '../../devices/platform-clock.js';
import type { Accelerator, AcceleratorOptions, MachineBuses, RamRegion, VcpuStop } from '../accelerator.js';
import { interpCpuidFilter } from './cpuid.js';
import { GuestClock } from './guest-time.js';
import { VcpuScheduler, type SchedulerVcpu } from './vcpu-scheduler.js';
import { irqLine } from '../../machine/irq.js';

export type InterpTimeSource = 'host' | 'instructions';

const LAPIC_BASE_MSR = 0xfee0_0000n;
const APIC_BASE_BSP = 0x100n;
const APIC_BASE_ENABLE = 0x800n;

export interface InterpAcceleratorOptions extends AcceleratorOptions {
  /** 'host' (default): guest time is host monotonic time. 'instructions': virtual time advances per instruction. */
  time?: InterpTimeSource;
  /** With time 'instructions': virtual nanoseconds per retired instruction (default 1, a 1 GHz one-IPC CPU). */
  nsPerInstruction?: number;
  /** Advertise and accept LAPIC TSC-deadline mode (default true). */
  tscDeadline?: boolean;
}

export class InterpAccelerator implements Accelerator {
  readonly name = 'interp' as const;
  description = 'the TypeScript interpreter';
  readonly interrupts: InterruptController;
  readonly msi: MsiSink;

  private memory: CoherentGuestMemory | undefined;
  private buses: MachineBuses | undefined;
  private clock: GuestClock | undefined;
  private router: InterruptRouter | undefined;
  private readonly timers = new TimerGroup();
  private vcpus: SchedulerVcpu[] = [];
  private scheduler: VcpuScheduler | undefined;
  private running: Promise<VcpuStop> | undefined;
  private closed = false;
  private readonly tscDeadline: boolean;
  /** Line levels devices set before the chipset exists (it needs the vCPU count); applied in createVcpus(). */
  private readonly earlyIrqLevels = new Map<number, boolean>();

  constructor(private readonly options: InterpAcceleratorOptions = {}) {
    this.tscDeadline = options.tscDeadline ?? true;
    this.interrupts = {
      setIrq: (gsi, level) => {
        if (this.router) this.router.setIrq(gsi, level);
        else this.earlyIrqLevels.set(gsi, level);
      },
    };
    this.msi = { sendMsi: (address, data) => this.requireRouter().sendMsi(address, data) };
    if (options.time !== undefined && options.time !== 'host' && options.time !== 'instructions') {
      throw new RangeError(`interpreter accelerator: time must be "host" or "instructions", got ${JSON.stringify(options.time)}`);
    }
  }

  /** Instructions retired by every vCPU since creation. */
  get instructionsRetired(): number {
    let n = 0;
    for (const v of this.vcpus) n += v.cpu.icount;
    return n;
  }

  /** The interpreter CPUs (diagnostics and tests). */
  get cpus(): readonly Cpu[] {
    return this.vcpus.map((v) => v.cpu);
  }

  private requireRouter(): InterruptRouter {
    if (!this.router) throw new Error('interpreter accelerator: createVcpus() must come before interrupts are raised');
    return this.router;
  }

  allocateMemory(regions: readonly RamRegion[]): GuestMemory {
    if (this.memory) throw new Error('interpreter accelerator: memory is already allocated');
    this.memory = new CoherentGuestMemory(regions.map((r) => {
      if (!Number.isSafeInteger(r.size) || r.size <= 0 || r.size % 4096 !== 0) {
        throw new RangeError(`interpreter accelerator: RAM region at 0x${r.guestAddress.toString(16)} has bad size ${r.size}`);
      }
      return { guestAddress: r.guestAddress, bytes: new Uint8Array(new ArrayBuffer(r.size)) };
    }));
    return this.memory;
  }

  attach(buses: MachineBuses): void {
    this.buses = buses;
    this.clock = new GuestClock(this.options.time ?? 'host', buses.clock, this.options.nsPerInstruction);
  }

  /**
   * The interrupt router needs the vCPU count, so the chipset is built here rather than in attach(). Devices
   * created by the Machine between attach() and createVcpus() only hold IrqLines, which resolve lazily.
   */
  createVcpus(count: number, boot: BootCpuState): void {
    const buses = this.buses;
    const clock = this.clock;
    if (!buses || !clock || !this.memory) throw new Error('interpreter accelerator: allocateMemory() and attach() come before createVcpus()');
    if (this.vcpus.length) throw new Error('interpreter accelerator: vCPUs already created');
    const router = new InterruptRouter({ cpuCount: count, clock, tscDeadline: this.tscDeadline });
    this.router = router;
    router.attach(buses.pio, buses.mmio);
    for (const [gsi, level] of this.earlyIrqLevels) router.setIrq(gsi, level);
    this.earlyIrqLevels.clear();
    const pit = new Pit8254({ clock, irq0: irqLine(router, 0) });
    pit.attach(buses.pio);
    new SpeakerPort61({ pit, clock }).attach(buses.pio);
    this.timers.add(router);
    this.timers.add(pit);
    // Machine-level timers (CMOS RTC) run on the Machine's clock; its own pump polls them too.
    const machineTimers = buses.timers;
    const machineClock = buses.clock;
    for (let i = 0; i < count; i++) {
      const lapic = router.forCpu(i);
      const cpu = new Cpu({
        memory: this.memory,
        pio: buses.pio,
        mmio: buses.mmio,
        interrupts: lapic,
        // The CPU adds its own IA32_TSC offset (boot MSRs set TSC = 0 on every reset); the scheduler copies that
        // offset to the LAPIC so TSC-deadline times are read on the same TSC the guest sees.
        tsc: () => BigInt(tscFromNs(clock.nowNs())),
        platformMsrs: lapic,
      });
      cpu.cpuidFilter = interpCpuidFilter({ apicId: lapic.id, tscDeadline: this.tscDeadline });
      this.vcpus.push({ cpu, lapic, index: i, tscOffset: 0n });
    }
    const bsp = this.vcpus[0]!.cpu;
    if (count > 1) bsp.shareCodeCache(this.vcpus.map((v) => v.cpu));
    // Device DMA and host writes invalidate decoded code (the cache is shared, so one CPU invalidates for all).
    this.memory.onWrite = (address, length) => bsp.invalidateCode(address, length);
    router.onInit = (i) => this.initVcpu(i);
    router.onStartup = (i, vector) => this.startVcpu(i, vector);
    this.scheduler = new VcpuScheduler({
      vcpus: this.vcpus,
      router,
      clock,
      timers: this.timers,
      machineTimers: { clock: machineClock, timers: machineTimers },
      log: this.options.log,
    });
    router.onInterruptPending = (i) => this.scheduler?.wake(i);
    importBootState(this.vcpus[0]!.cpu, boot);
  }

  resetVcpus(boot: BootCpuState): void {
    if (this.running) throw new Error('interpreter accelerator: resetVcpus() while running');
    for (const v of this.vcpus) {
      v.cpu.reset();
      v.cpu.invalidateAll();
      // Hardware-disable then enable: the LAPIC returns to its power-on register state.
      const base = LAPIC_BASE_MSR | (v.lapic.bsp ? APIC_BASE_BSP : 0n);
      v.lapic.writeMsr(MSR_IA32_APIC_BASE, base);
      v.lapic.writeMsr(MSR_IA32_APIC_BASE, base | APIC_BASE_ENABLE);
      v.lapic.waitingForSipi = !v.lapic.bsp;
    }
    const bsp = this.vcpus[0];
    if (bsp) importBootState(bsp.cpu, boot);
  }

  /** INIT: the vCPU goes back to its power-on state; an AP then waits for a startup IPI. */
  private initVcpu(i: number): void {
    const v = this.vcpus[i];
    if (!v) return;
    // Decoded code is cached by physical page and stays valid; reset() flushes this CPU's TLB.
    v.cpu.reset();
    v.cpu.requestStop();
  }

  /** Startup IPI: real mode at CS = vector << 8, IP = 0. */
  private startVcpu(i: number, vector: number): void {
    const v = this.vcpus[i];
    if (!v) return;
    const cpu = v.cpu;
    cpu.reset();
    cpu.segSel[CS] = (vector & 0xff) << 8;
    cpu.segBase[CS] = (vector & 0xff) << 12;
    cpu.rip = 0;
    cpu.updateMode();
  }

  run(): Promise<VcpuStop> {
    if (this.closed) return Promise.reject(new Error('interpreter accelerator is closed'));
    if (!this.scheduler) return Promise.reject(new Error('interpreter accelerator: createVcpus() before run()'));
    if (this.running) return this.running;
    const run = this.scheduler.run().finally(() => { this.running = undefined; });
    this.running = run;
    return run;
  }

  requestStop(): void {
    this.scheduler?.requestStop();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.scheduler?.requestStop();
  }
}

export function createAccelerator(options: InterpAcceleratorOptions = {}): InterpAccelerator {
  return new InterpAccelerator(options);
}
