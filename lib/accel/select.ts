/**
 * `--accel kvm|interp|auto`: builds the accelerator and says why it was chosen. auto takes KVM only where it
 * runs guest supervisor code natively (see probe.ts); elsewhere the TypeScript interpreter.
 */
import type { Accel } from '../machine/config.js';
import type { Accelerator, AcceleratorFactory, AcceleratorOptions } from './accelerator.js';
import { probeKvm } from '../kvm/index.js';
import { KvmAccelerator } from './kvm/kvm-accelerator.js';
import { probeKvmHost } from './probe.js';

export class AcceleratorUnavailableError extends Error {
  readonly code = 'EACCEL';
  constructor(message: string) {
    super(message);
    this.name = 'AcceleratorUnavailableError';
  }
}

export interface SelectedAccelerator {
  accelerator: Accelerator;
  /** e.g. "using KVM: /dev/kvm is kvm_intel (CPL0 loop: 0.12 ms ...)". */
  reason: string;
}

// A variable specifier: the interpreter accelerator is optional at build time (see AcceleratorFactory).
const INTERP_MODULE = './interp/index.js';

/** The interpreter accelerator's factory, or a message saying why there is none. */
export async function loadInterpreterFactory(): Promise<AcceleratorFactory | string> {
  let mod: unknown;
  try {
    mod = await import(INTERP_MODULE);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' && (e as Error).message.includes('accel/interp/index')) return 'the interpreter accelerator (lib/accel/interp) is not part of this build yet';
    return `the interpreter accelerator failed to load: ${e instanceof Error ? e.message : String(e)}`;
  }
  const factory = (mod as { createAccelerator?: unknown }).createAccelerator;
  if (typeof factory !== 'function') return 'lib/accel/interp does not export createAccelerator()';
  return factory as AcceleratorFactory;
}

async function createInterp(options: AcceleratorOptions, why: string, kvmUsable: boolean): Promise<SelectedAccelerator> {
  const factory = await loadInterpreterFactory();
  if (typeof factory === 'string') {
    const hint = kvmUsable ? '; --accel kvm still runs guests on this host\'s KVM' : '';
    throw new AcceleratorUnavailableError(`${factory} (${why.replace(/^using the interpreter: /, '')})${hint}`);
  }
  const accelerator = await factory(options);
  accelerator.description = why;
  return { accelerator, reason: why };
}

function createKvm(options: SelectOptions, emulatingHost: boolean, why: string): SelectedAccelerator {
  const { kvmPath, ...rest } = options;
  const accelerator = new KvmAccelerator({ ...rest, emulatingHost, ...(kvmPath === undefined ? {} : { path: kvmPath }) });
  accelerator.description = why;
  return { accelerator, reason: why };
}

export interface SelectOptions extends AcceleratorOptions {
  /** KVM device (default /dev/kvm). */
  kvmPath?: string;
}

export async function selectAccelerator(accel: Accel, options: SelectOptions = {}): Promise<SelectedAccelerator> {
  if (accel === 'interp') return createInterp(options, 'using the interpreter: --accel interp', probeKvm(options.kvmPath).usable);
  const host = probeKvmHost(options.kvmPath);
  if (accel === 'kvm') {
    if (!host.kvm.usable) {
      const reason = host.kvm.reason.replace(/\s*\n\s*/g, ' ');
      const hint = reason.includes('--accel interp') ? '' :
        '; use --accel interp (or auto), or run on a host with hardware virtualization where this user may open /dev/kvm';
      throw new AcceleratorUnavailableError(`--accel kvm: ${reason}${hint}`);
    }
    const emulating = host.module === 'kvm_pvm' || !host.nativeSupervisor;
    return createKvm(options, emulating, `using KVM: --accel kvm; ${host.summary}`);
  }
  if (host.nativeSupervisor && host.module !== 'kvm_pvm') return createKvm(options, false, `using KVM: ${host.summary}`);
  return createInterp(options, `using the interpreter: ${host.summary}`, host.kvm.usable);
}
