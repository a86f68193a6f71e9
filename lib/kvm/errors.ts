/**
 * Errors from the KVM layer, shaped like Node's own system errors: `.code` ('ENOENT'), `.errno` (negative, as
 * in Node), `.syscall`. Native hot paths return -errno numbers; `check()` turns those into KvmErrors.
 */
import { constants } from 'node:os';

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}

/** 'ENOENT' for 2; 'E<n>' for numbers the OS table does not know. */
export function errnoName(errno: number): string {
  const n = Math.abs(errno);
  return errnoNames.get(n) ?? `E${n}`;
}

export class KvmError extends Error {
  readonly code: string;
  /** Negative errno, as in Node's system errors. */
  readonly errno: number;
  readonly syscall: string;
  constructor(errno: number, syscall: string, detail?: string) {
    const code = errnoName(errno);
    super(`${code}: ${syscall} failed${detail ? `: ${detail}` : ''}`);
    this.name = 'KvmError';
    this.code = code;
    this.errno = -Math.abs(errno);
    this.syscall = syscall;
  }
}

/** Throws a KvmError when a native status is negative; returns it otherwise. */
export function check(status: number, syscall: string, detail?: string): number {
  if (status < 0) throw new KvmError(-status, syscall, detail);
  return status;
}

/** The shape of errors the native constructors throw (code/errno/syscall set by the addon). */
export interface SystemErrorLike extends Error {
  code: string;
  errno: number;
  syscall: string;
  path?: string;
}

export function isSystemError(e: unknown): e is SystemErrorLike {
  return e instanceof Error && typeof (e as Partial<SystemErrorLike>).code === 'string' && typeof (e as Partial<SystemErrorLike>).errno === 'number';
}

/** Adds an actionable hint to errors from opening the KVM device; keeps code/errno/syscall/path. */
export function explainOpenError(e: SystemErrorLike, path: string): SystemErrorLike {
  let hint: string | undefined;
  if (e.code === 'EACCES' || e.code === 'EPERM') {
    hint = `no permission to open ${path}: add your user to the 'kvm' group (sudo usermod -aG kvm $USER, then log in again) or run with access to ${path}`;
  } else if (e.code === 'ENOENT' || e.code === 'ENODEV' || e.code === 'ENXIO') {
    hint = `KVM is not available (${path} missing): load kvm_intel/kvm_amd or use --accel interp`;
  }
  if (hint) e.message = `${hint} [${e.message}]`;
  return e;
}
