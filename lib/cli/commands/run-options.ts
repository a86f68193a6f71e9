import { parseArgs } from 'node:util';
import { UsageError } from '../usage-error.js';
import { parseSize } from '../parse-size.js';
import type { SerialDestination } from '../../console/bind-serial.js';

export type Accel = 'kvm' | 'interp' | 'auto';
/** Where COM1 goes: the console's own destination type, so the CLI and bindSerial cannot drift apart. */
export type SerialDest = SerialDestination;

export interface DiskOption {
  path: string;
  readOnly: boolean;
}

export interface RunOptions {
  kernel?: string;
  initrd?: string;
  append?: string;
  memoryBytes: number;
  cpus: number;
  accel: Accel;
  arch: 'x86_64' | 'i386';
  serial: SerialDest;
  disks: DiskOption[];
  nets: string[];
  rng: boolean;
  /** How virtio devices are attached: virtio-mmio slots (default) or virtio-pci on PCI bus 0. */
  virtioTransport: 'mmio' | 'pci';
  quiet: boolean;
}

export function parseRunOptions(argv: string[]): RunOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        kernel: { type: 'string', short: 'k' },
        initrd: { type: 'string', short: 'i' },
        append: { type: 'string', short: 'a' },
        memory: { type: 'string', short: 'm', default: '256M' },
        cpus: { type: 'string', short: 'c', default: '1' },
        accel: { type: 'string', default: 'auto' },
        arch: { type: 'string', default: 'x86_64' },
        serial: { type: 'string', default: 'stdio' },
        disk: { type: 'string', multiple: true, default: [] },
        net: { type: 'string', multiple: true, default: [] },
        rng: { type: 'boolean', default: false },
        'virtio-transport': { type: 'string', default: 'mmio' },
        quiet: { type: 'boolean', short: 'q', default: false },
      },
    });
  } catch (e) {
    // parseArgs' messages already name the option ("Unknown option '--foo'").
    throw new UsageError((e as Error).message, "see 'nodevmm help run'");
  }
  const v = parsed.values;

  const cpus = Number(v.cpus);
  if (!Number.isInteger(cpus) || cpus < 1) {
    throw new UsageError(`--cpus: "${v.cpus}" must be a whole number of vCPUs, at least 1`);
  }
  const accel = v.accel as string;
  if (accel !== 'kvm' && accel !== 'interp' && accel !== 'auto') {
    throw new UsageError(`--accel: "${accel}" is not one of kvm, interp, auto`);
  }
  const arch = v.arch as string;
  if (arch !== 'x86_64' && arch !== 'i386') throw new UsageError(`--arch: "${arch}" is not one of x86_64, i386`);
  if (v.kernel === undefined && v.initrd !== undefined) {
    throw new UsageError('--initrd needs --kernel (the reference guest brings its own initramfs)');
  }

  const virtioTransport = v['virtio-transport'] as string;
  if (virtioTransport !== 'mmio' && virtioTransport !== 'pci') {
    throw new UsageError(`--virtio-transport: "${virtioTransport}" is not one of mmio, pci`);
  }

  const options: RunOptions = {
    memoryBytes: parseSize(v.memory as string, '--memory', 'MiB'),
    cpus,
    accel,
    arch,
    serial: parseSerial(v.serial as string),
    disks: (v.disk as string[]).map(parseDisk),
    nets: v.net as string[],
    rng: v.rng as boolean,
    virtioTransport,
    quiet: v.quiet as boolean,
  };
  if (v.kernel !== undefined) options.kernel = v.kernel;
  if (v.initrd !== undefined) options.initrd = v.initrd;
  if (v.append !== undefined) options.append = v.append;
  return options;
}

function parseSerial(text: string): SerialDest {
  if (text === 'stdio') return { kind: 'stdio' };
  if (text === 'none') return { kind: 'none' };
  if (text.startsWith('file:') && text.length > 5) return { kind: 'file', path: text.slice(5) };
  throw new UsageError(`--serial: "${text}" is not one of stdio, none, file:PATH`);
}

function parseDisk(text: string): DiskOption {
  const [path, ...flags] = text.split(',');
  if (!path) throw new UsageError(`--disk: "${text}" has no path`);
  let readOnly = false;
  for (const flag of flags) {
    if (flag === 'ro' || flag === 'readonly') readOnly = true;
    else throw new UsageError(`--disk ${text}: unknown flag "${flag}" (known: ro)`);
  }
  return { path, readOnly };
}
