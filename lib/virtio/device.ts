/**
 * The transport-independent face of a virtio device. A transport (virtio-mmio now, virtio-pci later) owns a
 * VirtioCore, which owns the device, its queues and the status/feature state machine; the device only sees
 * the negotiated features, its queues and a few callbacks.
 */
import type { GuestMemory } from '../machine/guest-memory.js';
import type { Virtqueue } from './queue.js';

export interface VirtioDeviceContext {
  readonly memory: GuestMemory;
  /** Features the driver accepted (device-specific and transport bits). */
  readonly features: bigint;
  /** One entry per queue the device declared; queues the driver left disabled are not active. */
  readonly queues: readonly Virtqueue[];
  /** The driver broke the protocol: enter DEVICE_NEEDS_RESET, log once, stop using the queues. */
  fail(reason: string): void;
  /** Device configuration changed: bump the generation and send a configuration-change interrupt. */
  configChanged(): void;
  /** One log line about this device. */
  log(message: string): void;
}

export interface VirtioDevice {
  /** Virtio device ID (2 = block, 4 = entropy, ...). */
  readonly deviceId: number;
  /** Device-specific feature bits offered (the core adds VERSION_1, INDIRECT_DESC and EVENT_IDX). */
  readonly deviceFeatures: bigint;
  /** Maximum size of each queue; the length is the number of queues. */
  readonly queueMaxSizes: readonly number[];
  /** Bytes of device-specific configuration space. */
  readonly configSize: number;
  /** Little-endian read of 1, 2 or 4 bytes of configuration space (offset already bounds-checked). */
  readConfig(offset: number, size: number): number;
  writeConfig(offset: number, size: number, value: number): void;
  /** The driver set DRIVER_OK: start serving the queues. */
  activate(context: VirtioDeviceContext): void;
  /** The driver notified queue `index` (only called while active). */
  queueNotify(index: number): void;
  /** Device reset: forget the activation; in-flight work must not touch the queues afterwards. */
  reset(): void;
  /** Optional extra check of the driver's feature choice at FEATURES_OK. */
  acceptFeatures?(features: bigint): boolean;
}

/** Little-endian read of `size` bytes of a config byte array; out-of-range bytes read as 0. */
export function readConfigBytes(bytes: Uint8Array, offset: number, size: number): number {
  let v = 0;
  for (let i = 0; i < size; i++) {
    const b = offset + i < bytes.length ? bytes[offset + i]! : 0;
    v |= b << (8 * i);
  }
  return v >>> 0;
}
