/** `nodevmm run`: build a Machine from the options, connect the console, run it, exit with its status. */
import { processExitStatus } from '../../devices/debug-exit.js';
import { ConfigError, type MachineConfig, validateMachineConfig } from '../../machine/config.js';
import { MiB } from '../../machine/layout.js';
import { Machine } from '../../machine/machine.js';
import { NetSpecError, parseNetSpec } from '../../net/spec.js';
import { UsageError } from '../usage-error.js';
import { referenceGuestFiles } from './reference-guest-files.js';
import { parseRunOptions, type RunOptions } from './run-options.js';

export interface CommandIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** Exit statuses for a VM stopped by a signal: the shell convention 128 + signal number. */
export const SIGNAL_STATUS: Record<'SIGINT' | 'SIGTERM', number> = { SIGINT: 130, SIGTERM: 143 };

/** ConfigError fields → the option the user typed. */
function optionFor(field: string): string {
  if (field === 'memoryMiB') return '--memory';
  if (field === 'cpus') return '--cpus';
  if (field === 'kernel') return '--kernel';
  if (field === 'initrd') return '--initrd';
  if (field === 'cmdline') return '--append';
  if (field.startsWith('disks')) return '--disk';
  if (field.startsWith('nets')) return '--net';
  return field;
}

function stripField(e: ConfigError): string {
  return e.message.startsWith(`${e.field}: `) ? e.message.slice(e.field.length + 2) : e.message;
}

/** Net specs are checked before anything is built, so a typo is a usage error (status 2). */
function checkNetSpecs(nets: readonly string[]): void {
  for (const text of nets) {
    try {
      parseNetSpec(text);
    } catch (e) {
      if (e instanceof NetSpecError) throw new UsageError(`--net: ${e.message}`);
      throw e;
    }
  }
}

export async function buildRunConfig(opts: RunOptions, progress: (line: string) => void): Promise<MachineConfig> {
  if (opts.memoryBytes % MiB !== 0) {
    throw new UsageError(`--memory: ${opts.memoryBytes} bytes is not a whole number of MiB`);
  }
  checkNetSpecs(opts.nets);
  let kernel = opts.kernel;
  let initrd = opts.initrd;
  let cmdline = opts.append;
  if (kernel === undefined) {
    // The reference guest configures its --net interfaces by DHCP; an explicit --append replaces all of that.
    const ref = await referenceGuestFiles(opts.arch, progress, { nets: opts.nets.length });
    kernel = ref.kernel;
    initrd = ref.initrd;
    cmdline ??= ref.append;
  }
  try {
    return validateMachineConfig({
      memoryMiB: opts.memoryBytes / MiB,
      cpus: opts.cpus,
      kernel,
      ...(initrd === undefined ? {} : { initrd }),
      ...(cmdline === undefined ? {} : { cmdline }),
      accel: opts.accel,
      serial: opts.serial.kind === 'file' ? { file: opts.serial.path } : opts.serial.kind,
      disks: opts.disks,
      nets: opts.nets,
    });
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(`${optionFor(e.field)}: ${stripField(e)}`);
    throw e;
  }
}

export async function runCommand(argv: string[], io: CommandIo): Promise<number> {
  const opts = parseRunOptions(argv);
  const say = (line: string): void => { if (!opts.quiet) io.stderr.write(`${line}\n`); };
  const config = await buildRunConfig(opts, say);
  let machine: Machine;
  try {
    machine = await Machine.create(config, { rng: opts.rng, virtioTransport: opts.virtioTransport, log: say });
  } catch (e) {
    // Device setup reports config fields ("nets[0]"); the user typed options.
    if (e instanceof ConfigError) throw Object.assign(new Error(`${optionFor(e.field)}: ${stripField(e)}`), { code: e.code });
    throw e;
  }

  const onSignal = (signal: 'SIGINT' | 'SIGTERM'): void => {
    say(`nodevmm: ${signal}: stopping the VM`);
    void machine.stop(SIGNAL_STATUS[signal], `stopped by ${signal}`);
  };
  const onInt = (): void => onSignal('SIGINT');
  const onTerm = (): void => onSignal('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    machine.start();
    const exit = await machine.wait();
    return processExitStatus(exit.status);
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}
