/** Boots a guest on the interpreter through the Machine API with a GuestConsole on COM1. */
import { InterpAccelerator } from '../../lib/accel/interp/index.js';
import { validateMachineConfig } from '../../lib/machine/config.js';
import type { MachineExit } from '../../lib/machine/exit-status.js';
import { Machine } from '../../lib/machine/machine.js';
import { GuestConsole } from './guest-console.js';
import type { GuestFiles } from './guest-files.js';

export interface BootedGuest {
  machine: Machine;
  accelerator: InterpAccelerator;
  console: GuestConsole;
  exit: Promise<MachineExit>;
  startedAt: number;
  /** Seconds since start(), for progress lines. */
  elapsed(): string;
}

export async function bootOnInterpreter(files: GuestFiles, opts: { cpus?: number; memoryMiB?: number; cmdline?: string } = {}): Promise<BootedGuest> {
  const accelerator = new InterpAccelerator();
  const machine = await Machine.create(validateMachineConfig({
    kernel: files.kernel,
    initrd: files.initrd,
    cpus: opts.cpus ?? 1,
    memoryMiB: opts.memoryMiB ?? 256,
    accel: 'interp',
    serial: 'none',
    cmdline: opts.cmdline ?? 'console=ttyS0',
  }), { accelerator, bindSerial: false });
  const con = new GuestConsole((bytes) => machine.serial.receive(bytes), process.env.NODEVMM_TEST_ECHO ? (s) => process.stdout.write(s) : undefined);
  machine.serial.addOutputListener((chunk) => con.push(chunk));
  const startedAt = performance.now();
  machine.start();
  return {
    machine, accelerator, console: con, exit: machine.wait(), startedAt,
    elapsed: () => ((performance.now() - startedAt) / 1000).toFixed(1),
  };
}
