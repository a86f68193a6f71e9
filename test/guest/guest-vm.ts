/**
 * Boots the reference guest on the interpreter accelerator with virtio devices, for guest-level device tests:
 * a GuestConsole on COM1 (test/interp/guest-console.ts) to type commands and read their output, progress lines
 * with elapsed time, and a helper to wait for the shell and to power off.
 */
import type { Accelerator } from '../../lib/accel/accelerator.js';
import { InterpAccelerator } from '../../lib/accel/interp/index.js';
import { kvmHostModule } from '../../lib/accel/probe.js';
import { referenceGuestArch } from '../../lib/guest/reference-guest.js';
import { initCmdline, REFERENCE_GUEST_CMDLINE } from '../../lib/guest/guest-protocol.js';
import { probeKvm } from '../../lib/kvm/index.js';
import { validateMachineConfig } from '../../lib/machine/config.js';
import type { MachineExit } from '../../lib/machine/exit-status.js';
import { Machine } from '../../lib/machine/machine.js';
import { GuestConsole } from '../interp/guest-console.js';

export interface GuestImages {
  kernel: string;
  initrd: string;
  rootfs: string;
}

/** The x86_64 reference guest with its rootfs, or why it is not available. */
export function referenceImages(): GuestImages | { skip: string } {
  let arch;
  try {
    arch = referenceGuestArch('x86_64');
  } catch (e) {
    return { skip: `guest/build.sh --print-dir failed: ${(e as Error).message}` };
  }
  if (!arch) return { skip: 'the x86_64 reference guest (bzImage, initramfs, rootfs.ext4) is not built: run guest/build.sh' };
  return { kernel: arch.bzImage, initrd: arch.initramfs, rootfs: arch.rootfs };
}

export type GuestAccel = 'interp' | 'kvm';

/**
 * Why guest-level tests cannot run on `accel` here, or undefined when they can. KVM needs a host that runs guest
 * supervisor code natively: kvm_pvm (these development machines) cannot finish a Linux boot (HOST-KVM.md).
 */
export function accelSkipReason(accel: GuestAccel): string | undefined {
  if (accel === 'interp') return undefined;
  const kvm = probeKvm();
  if (!kvm.usable) return `KVM is not usable: ${kvm.reason}`;
  if (kvmHostModule() === 'kvm_pvm') return 'this host\'s KVM is kvm_pvm, which cannot finish a Linux boot (see /work/shared/HOST-KVM.md)';
  return undefined;
}

export interface GuestVmOptions {
  accel?: GuestAccel;
  disks?: { path: string; readOnly?: boolean }[];
  rng?: boolean;
  transport?: 'mmio' | 'pci';
  /** Passed to /init: mount this device on /mnt. */
  rootdisk?: string;
  memoryMiB?: number;
  /** Label for progress lines. */
  label: string;
}

export class GuestVm {
  readonly console: GuestConsole;
  readonly exit: Promise<MachineExit>;
  private readonly startedAt = performance.now();

  private constructor(readonly machine: Machine, readonly accelerator: Accelerator, private readonly label: string) {
    this.console = new GuestConsole(
      (bytes) => machine.serial.receive(bytes),
      process.env.NODEVMM_TEST_ECHO ? (s) => process.stdout.write(s) : undefined,
    );
    machine.serial.addOutputListener((chunk) => this.console.push(chunk));
    this.exit = machine.wait();
  }

  static async boot(images: GuestImages, options: GuestVmOptions): Promise<GuestVm> {
    const accel = options.accel ?? 'interp';
    const cmdline = [REFERENCE_GUEST_CMDLINE, initCmdline(options.rootdisk === undefined ? {} : { rootdisk: options.rootdisk })]
      .filter((s) => s !== '').join(' ');
    const machine = await Machine.create(validateMachineConfig({
      kernel: images.kernel,
      initrd: images.initrd,
      memoryMiB: options.memoryMiB ?? 256,
      accel,
      serial: 'none',
      cmdline,
      disks: options.disks ?? [],
    }), {
      ...(accel === 'interp' ? { accelerator: new InterpAccelerator() } : {}), bindSerial: false, rng: options.rng ?? false, virtioTransport: options.transport ?? 'mmio',
      // VMM status and device error lines (e.g. a virtio device entering NEEDS_RESET) go to the test log.
      log: (line) => console.log(`[${options.label}] vmm: ${line}`),
    });
    const vm = new GuestVm(machine, machine.accelerator, options.label);
    machine.start();
    vm.progress(`booting (${options.transport ?? 'mmio'}, ${(options.disks ?? []).length} disk(s)${options.rng ? ', rng' : ''})`);
    return vm;
  }

  elapsed(): string {
    return ((performance.now() - this.startedAt) / 1000).toFixed(1);
  }

  progress(line: string): void {
    console.log(`[${this.label}] ${this.elapsed()} s: ${line}`);
  }

  /** Waits for /init's shell prompt (printed at or after console position `from`). */
  async shell(timeoutMs = 300_000, from = 0): Promise<void> {
    await this.console.waitFor(/nodevmm-init: starting shell[\s\S]*# /, timeoutMs, from);
    const a = this.accelerator;
    this.progress(`shell prompt${a instanceof InterpAccelerator ? ` (${(a.instructionsRetired / 1e6).toFixed(0)} M instructions)` : ''}`);
  }

  /** Runs a shell command; resolves with its output (stdout and stderr, as the console shows them). */
  run(command: string, timeoutMs = 120_000): Promise<string> {
    return this.console.run(command, timeoutMs);
  }

  /** Runs `command` and returns its exit status with the output. */
  async status(command: string, timeoutMs = 120_000): Promise<{ status: number; output: string }> {
    const out = await this.run(`${command}; echo "rc=$?"`, timeoutMs);
    const m = /rc=(\d+)\s*$/.exec(out);
    if (!m) throw new Error(`no exit status in output of ${JSON.stringify(command)}: ${out}`);
    return { status: Number(m[1]), output: out.slice(0, m.index) };
  }

  /**
   * The guest's own sequential read: `dd if=DEVICE of=/dev/null bs=1M count=MIB [EXTRA]`, timed by the guest clock
   * (/proc/uptime around it) and by the host. Busybox dd prints no rate, so we compute it.
   */
  async ddRead(device: string, mib: number, extra = ''): Promise<{ records: string; guestSeconds: number; hostSeconds: number; mibPerSecond: number }> {
    const t0 = performance.now();
    const out = await this.run(
      `a=$(cut -d" " -f1 /proc/uptime); dd if=${device} of=/dev/null bs=1M count=${mib} ${extra} 2>&1 | tail -1; b=$(cut -d" " -f1 /proc/uptime); echo "uptime $a $b"`,
      600_000,
    );
    const hostSeconds = (performance.now() - t0) / 1000;
    const m = /^(.*records out)\s*\nuptime ([\d.]+) ([\d.]+)\s*$/m.exec(out);
    if (!m) throw new Error(`unexpected dd output: ${out}`);
    const guestSeconds = Number(m[3]) - Number(m[2]);
    return { records: m[1]!.trim(), guestSeconds, hostSeconds, mibPerSecond: mib / Math.max(guestSeconds, 0.01) };
  }

  /** `poweroff` and wait for the machine to end (disk images are closed when this resolves). */
  async powerOff(timeoutMs = 120_000): Promise<MachineExit> {
    this.machine.serial.receive(Buffer.from('poweroff\n'));
    const exit = await Promise.race([
      this.exit,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no power-off after ${timeoutMs} ms`)), timeoutMs)),
    ]);
    this.progress(`${exit.message}`);
    return exit;
  }

  async kill(): Promise<void> {
    if (this.machine.state !== 'stopped') await this.machine.stop();
  }
}
