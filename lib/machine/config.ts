/**
 * Machine configuration: what the CLI and the API hand to the Machine, and its validation.
 *
 * validateMachineConfig accepts untrusted input (parsed JSON, CLI flags) and either returns a complete,
 * normalised MachineConfig or throws ConfigError naming the offending field. Device parts that need more
 * settings extend MachineConfig with their own optional fields and validate them themselves.
 */

import { NetSpecError, parseNetSpec } from '../net/spec.js';
import { MIN_MEMORY_BYTES, MiB } from './layout.js';

/**
 * Most vCPUs a machine may have: xAPIC IDs are 8 bits, 0xff is the broadcast ID, and the MP table gives the
 * IOAPIC the ID after the last CPU, so CPUs use IDs 0..253 and the IOAPIC 254.
 */
export const MAX_VCPUS = 254;
export const MIN_MEMORY_MIB = MIN_MEMORY_BYTES / MiB;
/** 1 TiB: far above anything these hosts can back, low enough that byte counts stay exact doubles. */
export const MAX_MEMORY_MIB = 1024 * 1024;

export type Accel = 'kvm' | 'interp' | 'auto';
export const ACCELS: readonly Accel[] = ['kvm', 'interp', 'auto'];

export type SerialConfig = 'stdio' | 'none' | { readonly file: string };

export interface DiskConfig {
  readonly path: string;
  readonly readOnly: boolean;
}

export interface MachineConfig {
  readonly memoryMiB: number;
  readonly cpus: number;
  /** Path of a bzImage, an ELF vmlinux or a multiboot ELF image. */
  readonly kernel: string;
  readonly initrd?: string;
  readonly cmdline: string;
  readonly accel: Accel;
  readonly serial: SerialConfig;
  /** virtio-blk disks, in order. */
  readonly disks: readonly DiskConfig[];
  /**
   * virtio-net interfaces, in order, each a `--net` specification (lib/net/spec.ts): `user[,net=...][,hostfwd=...]
   * [,restrict=on]`, `tap,ifname=NAME`, `socket,listen=HOST:PORT` or `socket,connect=HOST:PORT`.
   */
  readonly nets: readonly string[];
}

/** What callers may pass: the same fields with defaults for the optional ones. */
export interface MachineConfigInput {
  memoryMiB: number;
  cpus?: number;
  kernel: string;
  initrd?: string;
  cmdline?: string;
  accel?: Accel;
  serial?: SerialConfig;
  disks?: readonly { path: string; readOnly?: boolean }[];
  nets?: readonly string[];
}

export const DEFAULT_CMDLINE = 'console=ttyS0';

export class ConfigError extends Error {
  readonly code = 'ECONFIG';
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'ConfigError';
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  return Array.isArray(v) ? 'an array' : `a ${typeof v}`;
}

function nonEmptyString(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0) {
    throw new ConfigError(field, `expected a non-empty string, got ${describe(v)}`);
  }
  if (v.includes('\0')) throw new ConfigError(field, 'must not contain NUL characters');
  return v;
}

function validateCpus(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw new ConfigError('cpus', `the number of vCPUs must be an integer, got ${describe(v)}`);
  }
  if (v < 1) throw new ConfigError('cpus', `a machine needs at least 1 vCPU, got ${v}`);
  if (v > MAX_VCPUS) throw new ConfigError('cpus', `at most ${MAX_VCPUS} vCPUs are supported, got ${v}`);
  return v;
}

function validateMemory(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw new ConfigError('memoryMiB', `memory must be a whole number of MiB, got ${describe(v)}`);
  }
  if (v < MIN_MEMORY_MIB) {
    throw new ConfigError(
      'memoryMiB',
      `${v} MiB is too small: the kernel, initrd and boot tables need at least ${MIN_MEMORY_MIB} MiB`,
    );
  }
  if (v > MAX_MEMORY_MIB) throw new ConfigError('memoryMiB', `${v} MiB exceeds the maximum of ${MAX_MEMORY_MIB} MiB`);
  return v;
}

function validateSerial(v: unknown): SerialConfig {
  if (v === 'stdio' || v === 'none') return v;
  if (isRecord(v) && Object.keys(v).length === 1 && 'file' in v) {
    return { file: nonEmptyString(v['file'], 'serial.file') };
  }
  throw new ConfigError('serial', `expected "stdio", "none" or { file: <path> }, got ${describe(v)}`);
}

function validateDisks(v: unknown): DiskConfig[] {
  if (!Array.isArray(v)) throw new ConfigError('disks', `expected an array, got ${describe(v)}`);
  return v.map((d: unknown, i) => {
    const field = `disks[${i}]`;
    if (!isRecord(d)) throw new ConfigError(field, `expected { path, readOnly? }, got ${describe(d)}`);
    const path = nonEmptyString(d['path'], `${field}.path`);
    const ro = d['readOnly'] ?? false;
    if (typeof ro !== 'boolean') throw new ConfigError(`${field}.readOnly`, `expected a boolean, got ${describe(ro)}`);
    return { path, readOnly: ro };
  });
}

function validateNets(v: unknown): string[] {
  if (!Array.isArray(v)) throw new ConfigError('nets', `expected an array of --net specifications (e.g. "user", "tap,ifname=tap0"), got ${describe(v)}`);
  return v.map((n: unknown, i) => {
    const text = nonEmptyString(n, `nets[${i}]`);
    try {
      parseNetSpec(text);
    } catch (e) {
      // The spec parser names the option at fault ("hostfwd", "ifname", ...); prefix the config field.
      if (e instanceof NetSpecError) throw new ConfigError(`nets[${i}]`, e.message);
      throw e;
    }
    return text;
  });
}

const KNOWN_FIELDS = new Set(['memoryMiB', 'cpus', 'kernel', 'initrd', 'cmdline', 'accel', 'serial', 'disks', 'nets']);

/**
 * Validates untrusted configuration and returns a complete MachineConfig (defaults: 1 vCPU, accel "auto",
 * serial "stdio", cmdline DEFAULT_CMDLINE, no disks or nets). Unknown fields are rejected so that a typo
 * ("memory" for "memoryMiB") is reported instead of silently ignored; callers that extend the config pass
 * their extra field names in `extraFields` and validate those themselves.
 */
export function validateMachineConfig(input: unknown, extraFields: readonly string[] = []): MachineConfig {
  if (!isRecord(input)) throw new ConfigError('config', `expected an object, got ${describe(input)}`);
  for (const key of Object.keys(input)) {
    if (!KNOWN_FIELDS.has(key) && !extraFields.includes(key)) throw new ConfigError(key, 'unknown configuration field');
  }
  if (input['memoryMiB'] === undefined) throw new ConfigError('memoryMiB', 'required (guest memory in MiB)');
  if (input['kernel'] === undefined) throw new ConfigError('kernel', 'required (path of the kernel image)');
  const memoryMiB = validateMemory(input['memoryMiB']);
  const cpus = validateCpus(input['cpus'] ?? 1);
  const kernel = nonEmptyString(input['kernel'], 'kernel');
  const initrd = input['initrd'] === undefined ? undefined : nonEmptyString(input['initrd'], 'initrd');
  const cmdline = input['cmdline'] ?? DEFAULT_CMDLINE;
  if (typeof cmdline !== 'string') throw new ConfigError('cmdline', `expected a string, got ${describe(cmdline)}`);
  if (cmdline.includes('\0')) throw new ConfigError('cmdline', 'must not contain NUL characters');
  const accel = input['accel'] ?? 'auto';
  if (typeof accel !== 'string' || !(ACCELS as readonly string[]).includes(accel)) {
    throw new ConfigError('accel', `expected one of ${ACCELS.join(', ')}, got ${describe(accel)}`);
  }
  const serial = validateSerial(input['serial'] ?? 'stdio');
  const disks = validateDisks(input['disks'] ?? []);
  const nets = validateNets(input['nets'] ?? []);
  const config: MachineConfig = {
    memoryMiB,
    cpus,
    kernel,
    cmdline,
    accel: accel as Accel,
    serial,
    disks,
    nets,
    ...(initrd === undefined ? {} : { initrd }),
  };
  return config;
}
