/**
 * A one-byte port (0x501) the guest writes to when it reaches a milestone (the reference guest's /init writes
 * 1 when it starts). The VMM records how long after VM start that was: the project's boot-time figure.
 */
import type { BusDevice } from '../machine/bus.js';

export const BOOT_MARKER_PORT = 0x501;
export const BOOT_MARKER_PORT_LENGTH = 1;

export interface BootMarkerEvent {
  /** The byte the guest wrote. */
  value: number;
  /** Milliseconds since the VM started (start time from `start()` or construction). */
  elapsedMs: number;
}

export interface BootMarkerOptions {
  onMarker?: (event: BootMarkerEvent) => void;
  /** Monotonic milliseconds; default performance.now(). */
  nowMs?: () => number;
}

export class BootMarker implements BusDevice {
  private readonly nowMs: () => number;
  private startMs: number;
  /** Every marker so far, in order. */
  readonly events: BootMarkerEvent[] = [];

  constructor(private readonly options: BootMarkerOptions = {}) {
    this.nowMs = options.nowMs ?? (() => performance.now());
    this.startMs = this.nowMs();
  }

  /** Call when the vCPUs start running; elapsed times count from here. */
  start(): void {
    this.startMs = this.nowMs();
    this.events.length = 0;
  }

  read(_offset: number, size: number): number {
    return size >= 4 ? 0xffffffff : (1 << (size * 8)) - 1;
  }

  write(_offset: number, _size: number, value: number): void {
    const event = { value: value & 0xff, elapsedMs: this.nowMs() - this.startMs };
    this.events.push(event);
    this.options.onMarker?.(event);
  }
}

/** The CLI's status line for a marker. */
export function formatBootMarker(event: BootMarkerEvent): string {
  return `nodevmm: guest reached boot marker ${event.value} after ${Math.round(event.elapsedMs)} ms`;
}
