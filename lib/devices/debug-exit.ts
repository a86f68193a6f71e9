/**
 * QEMU's isa-debug-exit convention: a guest (usually a test kernel) writes a code to port 0xf4 and the VM
 * ends with exit status (code << 1) | 1, so even code 0 is distinguishable from a clean power-off (0).
 */
import type { BusDevice } from '../machine/bus.js';

export const DEBUG_EXIT_PORT = 0xf4;
export const DEBUG_EXIT_PORT_LENGTH = 4;

export interface DebugExitOptions {
  /** The exit status the VMM should end with: (code << 1) | 1 for the value written. */
  onExit: (status: number, code: number) => void;
}

export class DebugExit implements BusDevice {
  constructor(private readonly options: DebugExitOptions) {}

  read(_offset: number, size: number): number {
    return size >= 4 ? 0xffffffff : (1 << (size * 8)) - 1;
  }

  write(_offset: number, size: number, value: number): void {
    const code = size >= 4 ? value >>> 0 : value & ((1 << (size * 8)) - 1);
    // Arithmetic, not bit operators: a 32-bit code must not wrap into a negative status.
    this.options.onExit(code * 2 + 1, code);
  }
}

/** What a process can actually exit with: the low 8 bits, as the shell will see them. */
export function processExitStatus(status: number): number {
  return status % 256;
}
