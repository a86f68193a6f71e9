/**
 * A nodevmm machine: guest RAM from the memory map, the port and MMIO buses with the platform and virtio
 * devices, the kernel loaded by the loader its format needs, and vCPUs run by an accelerator (KVM or the
 * TypeScript interpreter — the Machine does not care which).
 *
 *   const m = await Machine.create(validateMachineConfig({...}), { log: console.error });
 *   m.start();                       // runs in the background; the event loop stays free
 *   await m.pause(); m.resume(); await m.reset();
 *   const exit = await m.wait();     // or await m.stop()
 *
 * Events: 'state' (MachineState), 'status' (one line for the user), 'boot-marker' (BootMarkerEvent),
 * 'reset' (after the machine rebooted), 'exit' (MachineExit).
 */
import { EventEmitter } from 'node:events';
import type { Accelerator, VcpuStop } from '../accel/accelerator.js';
import { selectAccelerator } from '../accel/select.js';
import { bindSerial, type SerialDestination } from '../console/index.js';
import { type BootMarkerEvent, formatBootMarker } from '../devices/boot-marker.js';
import { HostClock, TimerGroup } from '../devices/platform-clock.js';
import type { Uart16550 } from '../devices/serial/index.js';
import { Bus } from './bus.js';
import type { MachineConfig, SerialConfig } from './config.js';
import type { MachineExit, MachineExitReason } from './exit-status.js';
import type { GuestMemory } from './guest-memory.js';
import type { CreateNetBackendOptions } from '../net/create.js';
import { lowRamEnd, MiB, ramRegions } from './layout.js';
import { type KernelBootInfo, loadKernelFromFiles } from './loader/index.js';
import { createPlatformDevices, type PlatformDevices } from './platform-devices.js';
import { TimerPump } from './timer-pump.js';
import { type AttachedVirtio, attachVirtioDevices } from './virtio-devices.js';

export type MachineState = 'created' | 'running' | 'paused' | 'stopped';

export interface MachineOptions {
  /** Use this accelerator instead of selecting one from config.accel (the Machine closes it when it stops). */
  accelerator?: Accelerator;
  /** Attach a virtio-rng device. */
  rng?: boolean;
  /** How virtio devices appear: virtio-mmio (default) or modern virtio-pci behind a PCI host bridge (MSI-X). */
  virtioTransport?: 'mmio' | 'pci';
  /** Options for every `user` network beyond its --net spec (e.g. dnsServers for 10.0.2.3's upstream). */
  userNet?: CreateNetBackendOptions['user'];
  /** What a guest reboot does: restart the machine (default) or end it with status 0. */
  onReboot?: 'reset' | 'exit';
  /** Connect COM1 to config.serial when start() is called (default true). The CLI and tests may bind it themselves. */
  bindSerial?: boolean;
  /** Status lines (accelerator choice, boot markers, exit reason); also emitted as 'status' events. */
  log?: (line: string) => void;
}

const STATUS_FOR: Record<MachineExitReason, number> = {
  'debug-exit': 1, 'power-off': 0, reboot: 0, stopped: 0, 'triple-fault': 1, 'emulation-failure': 1, error: 1,
};

function serialDestination(s: SerialConfig): SerialDestination {
  return s === 'stdio' ? { kind: 'stdio' } : s === 'none' ? { kind: 'none' } : { kind: 'file', path: s.file };
}

export class Machine extends EventEmitter {
  /** COM1 (ISA IRQ 4): attach listeners with serial.addOutputListener, send input with serial.receive. */
  readonly serial: Uart16550;
  readonly memory: GuestMemory;
  readonly pio: Bus;
  readonly mmio: Bus;
  /** The kernel command line the guest got (config.cmdline plus virtio_mmio.device= entries). */
  readonly cmdline: string;
  private _state: MachineState = 'created';
  private boot: KernelBootInfo;
  private pendingExit: MachineExit | undefined;
  private pauseRequested = false;
  private resetRequested = false;
  private resumeGate: (() => void) | undefined;
  private pausedWaiters: (() => void)[] = [];
  private resetWaiters: (() => void)[] = [];
  private unbindSerial: (() => void) | undefined;
  private exitPromise: Promise<MachineExit>;
  private resolveExit!: (exit: MachineExit) => void;
  private readonly pump: TimerPump;

  private constructor(
    readonly config: MachineConfig,
    readonly accelerator: Accelerator,
    private readonly options: MachineOptions,
    parts: {
      memory: GuestMemory; pio: Bus; mmio: Bus; clock: HostClock; timers: TimerGroup; devices: PlatformDevices;
      virtio: AttachedVirtio; boot: KernelBootInfo; cmdline: string;
    },
  ) {
    super();
    this.memory = parts.memory;
    this.pio = parts.pio;
    this.mmio = parts.mmio;
    this.clock = parts.clock;
    this.devices = parts.devices;
    this.virtio = parts.virtio;
    this.boot = parts.boot;
    this.cmdline = parts.cmdline;
    this.serial = parts.devices.uart;
    this.pump = new TimerPump(parts.clock, parts.timers);
    this.exitPromise = new Promise((resolve) => { this.resolveExit = resolve; });
  }

  private readonly clock: HostClock;
  private readonly devices: PlatformDevices;
  private readonly virtio: AttachedVirtio;

  /** Builds the machine (allocates RAM, creates devices, loads the kernel, creates vCPUs). Nothing runs yet. */
  static async create(config: MachineConfig, options: MachineOptions = {}): Promise<Machine> {
    const log = options.log ?? (() => {});
    let accelerator = options.accelerator;
    if (!accelerator) {
      const selected = await selectAccelerator(config.accel, { log: (m) => log(`nodevmm: ${m}`) });
      accelerator = selected.accelerator;
      log(`nodevmm: ${selected.reason}`);
    }
    let virtio: AttachedVirtio | undefined;
    try {
      const memoryBytes = config.memoryMiB * MiB;
      const memory = accelerator.allocateMemory(ramRegions(memoryBytes));
      const pio = new Bus('pio');
      const mmio = new Bus('mmio');
      const clock = new HostClock();
      const timers = new TimerGroup();
      accelerator.attach({ memory, pio, mmio, clock, timers });
      // Hooks reach the machine once it exists; devices cannot fire before the vCPUs run.
      let machine: Machine | undefined;
      const devices = createPlatformDevices(pio, accelerator.interrupts, clock, {
        below4G: lowRamEnd(memoryBytes), above4G: memoryBytes - lowRamEnd(memoryBytes),
      }, {
        onReset: () => machine?.guestReset(),
        onDebugExit: (status, code) => machine?.debugExit(status, code),
        onBootMarker: (event) => machine?.bootMarker(event),
        onRtcWrite: () => machine?.pump.kick(),
      });
      timers.add(devices.rtc);
      virtio = await attachVirtioDevices(
        { disks: config.disks, rng: options.rng ?? false, nets: config.nets, transport: options.virtioTransport ?? 'mmio', userNet: options.userNet },
        memory, mmio, accelerator.interrupts, (m) => log(`nodevmm: ${m}`), { pio, msi: accelerator.msi, fastPaths: accelerator.fastPaths },
      );
      const cmdline = [config.cmdline, virtio.cmdline].filter((s) => s !== '').join(' ');
      const boot = await loadKernel(memory, config, cmdline, memoryBytes, options.virtioTransport === 'pci');
      accelerator.createVcpus(config.cpus, boot.entry);
      machine = new Machine(config, accelerator, options, {
        memory, pio, mmio, clock, timers, devices, virtio, boot, cmdline,
      });
      return machine;
    } catch (e) {
      await virtio?.close();
      accelerator.close();
      throw e;
    }
  }

  get state(): MachineState {
    return this._state;
  }

  /** What was loaded: format, entry state, where the kernel/initrd/cmdline went. */
  get bootInfo(): KernelBootInfo {
    return this.boot;
  }

  /** Boot markers the guest wrote since the last (re)start. */
  get bootMarkers(): readonly BootMarkerEvent[] {
    return this.devices.bootMarker.events;
  }

  private setState(state: MachineState): void {
    this._state = state;
    this.emit('state', state);
  }

  private status(line: string): void {
    this.options.log?.(line);
    this.emit('status', line);
  }

  /** Starts the vCPUs in the background. Use wait() for the outcome. */
  start(): void {
    if (this._state !== 'created') throw new Error(`machine: start() in state ${this._state}`);
    if (this.options.bindSerial ?? true) {
      this.unbindSerial = bindSerial(this.serial, serialDestination(this.config.serial), {
        onQuit: () => { void this.stop(); },
        onFileError: (e) => this.status(`nodevmm: serial output: ${e.message}`),
      });
    }
    this.devices.bootMarker.start();
    this.pump.start();
    this.setState('running');
    void this.loop();
  }

  /** Resolves when the machine has ended. */
  wait(): Promise<MachineExit> {
    return this.exitPromise;
  }

  /** Stops the vCPUs and keeps the machine (virtual time stops too). */
  async pause(): Promise<void> {
    if (this._state === 'paused') return;
    if (this._state !== 'running') throw new Error(`machine: pause() in state ${this._state}`);
    const paused = new Promise<void>((resolve) => this.pausedWaiters.push(resolve));
    this.pauseRequested = true;
    this.accelerator.requestStop();
    await paused;
  }

  resume(): void {
    if (this._state !== 'paused') throw new Error(`machine: resume() in state ${this._state}`);
    this.clock.resume();
    this.setState('running');
    const gate = this.resumeGate;
    this.resumeGate = undefined;
    gate?.();
  }

  /** Power-cycles the guest: memory is cleared, devices reset, the kernel reloaded, vCPUs restarted. */
  async reset(): Promise<void> {
    if (this._state === 'stopped' || this._state === 'created') throw new Error(`machine: reset() in state ${this._state}`);
    const done = new Promise<void>((resolve) => this.resetWaiters.push(resolve));
    this.resetRequested = true;
    if (this._state === 'paused') this.resume();
    else this.accelerator.requestStop();
    await done;
  }

  /** Ends the machine (status 0 unless given). Resolves with the exit once everything is released. */
  async stop(status = 0, message = 'stopped'): Promise<MachineExit> {
    if (this._state === 'created') {
      this.finish({ reason: 'stopped', status, message });
      return this.exitPromise;
    }
    this.pendingExit ??= { reason: 'stopped', status, message };
    if (this._state === 'paused') this.resume();
    this.accelerator.requestStop();
    return this.exitPromise;
  }

  // ---- device hooks ---------------------------------------------------------------------------------

  private debugExit(status: number, code: number): void {
    this.pendingExit ??= { reason: 'debug-exit', status, message: `guest wrote ${code} to isa-debug-exit: exit status ${status}` };
    this.accelerator.requestStop();
  }

  private guestReset(): void {
    if ((this.options.onReboot ?? 'reset') === 'exit') {
      this.pendingExit ??= { reason: 'reboot', status: 0, message: 'guest rebooted' };
    } else {
      this.resetRequested = true;
    }
    this.accelerator.requestStop();
  }

  private bootMarker(event: BootMarkerEvent): void {
    this.emit('boot-marker', event);
    this.status(formatBootMarker(event));
  }

  // ---- the run loop ---------------------------------------------------------------------------------

  private async loop(): Promise<void> {
    try {
      for (;;) {
        const stop = await this.accelerator.run();
        if (this.pendingExit) return this.finish(this.pendingExit);
        const exit = this.exitFor(stop);
        if (exit) return this.finish(exit);
        if (stop.kind === 'reset' && (this.options.onReboot ?? 'reset') === 'exit') {
          return this.finish({ reason: 'reboot', status: 0, message: stop.detail });
        }
        if (stop.kind === 'reset' || this.resetRequested) {
          await this.doReset();
          continue;
        }
        if (this.pauseRequested) {
          this.pauseRequested = false;
          this.clock.pause();
          const resumed = new Promise<void>((resolve) => { this.resumeGate = resolve; });
          this.setState('paused');
          for (const w of this.pausedWaiters.splice(0)) w();
          await resumed;
          if (this.pendingExit) return this.finish(this.pendingExit);
          if (this.resetRequested) await this.doReset();
        }
      }
    } catch (e) {
      this.finish({ reason: 'error', status: 1, message: e instanceof Error ? e.message : String(e) });
    }
  }

  private exitFor(stop: VcpuStop): MachineExit | undefined {
    switch (stop.kind) {
      case 'stopped':
      case 'reset':
        return undefined;
      case 'power-off':
        return { reason: 'power-off', status: 0, message: `guest powered off (${stop.detail})` };
      case 'triple-fault':
        return { reason: 'triple-fault', status: STATUS_FOR['triple-fault'], message: stop.detail };
      case 'emulation-failure':
        return { reason: 'emulation-failure', status: STATUS_FOR['emulation-failure'], message: stop.detail };
      case 'error':
        return { reason: 'error', status: STATUS_FOR.error, message: stop.detail };
    }
  }

  private async doReset(): Promise<void> {
    this.resetRequested = false;
    for (const region of ramRegions(this.config.memoryMiB * MiB)) this.memory.fill(region.guestAddress, region.size, 0);
    this.devices.uart.reset();
    this.devices.i8042.reset();
    for (const t of this.virtio.transports) {
      if (t.reset) t.reset();
      else t.core.reset();
    }
    this.boot = await loadKernel(this.memory, this.config, this.cmdline, this.config.memoryMiB * MiB, this.options.virtioTransport === 'pci');
    this.accelerator.resetVcpus(this.boot.entry);
    this.devices.bootMarker.start();
    this.status('nodevmm: machine reset');
    this.emit('reset');
    for (const w of this.resetWaiters.splice(0)) w();
  }

  private finish(exit: MachineExit): void {
    if (this._state === 'stopped') return;
    this.pump.stop();
    this.serial.flushOutput();
    this.unbindSerial?.();
    this.unbindSerial = undefined;
    this.accelerator.close();
    for (const w of this.pausedWaiters.splice(0)) w();
    for (const w of this.resetWaiters.splice(0)) w();
    this.setState('stopped');
    if (exit.reason !== 'stopped' || exit.status !== 0) this.status(`nodevmm: ${exit.message}`);
    // Disk images are flushed and closed before anyone learns the machine is gone.
    void this.virtio.close().catch(() => {}).then(() => {
      this.emit('exit', exit);
      this.resolveExit(exit);
    });
  }
}

/** `pci`: the machine has PCI bus 0, so the MP table announces it and its INTx routes. */
function loadKernel(memory: GuestMemory, config: MachineConfig, cmdline: string, memoryBytes: number, pci: boolean): Promise<KernelBootInfo> {
  return loadKernelFromFiles(memory, {
    kernelPath: config.kernel,
    ...(config.initrd === undefined ? {} : { initrdPath: config.initrd }),
    cmdline,
    memoryBytes,
    cpus: config.cpus,
    pci,
  });
}
