/**
 * What a virtio-net device needs from a network backend: whole Ethernet frames in both directions.
 * Backends never block the event loop; `send` never throws for I/O reasons (a frame that cannot be delivered
 * is dropped and counted, like a lossy wire).
 */
export interface NetBackend {
  /** Hand one Ethernet frame (no virtio header, no FCS) to the network. The backend may keep the array. */
  send(frame: Uint8Array): void;
  /** Register the receiver of frames coming from the network (one receiver; a later call replaces it). */
  onFrame(cb: (frame: Uint8Array) => void): void;
  close(): Promise<void>;
}

/** Counters every backend keeps (more specific ones live on each backend). */
export interface NetBackendStats {
  framesSent: number;
  framesReceived: number;
  framesDropped: number;
}

/** Largest Ethernet frame (without FCS) any backend passes on: 64 KiB payload plus the 14-byte header. */
export const MAX_FRAME_BYTES = 65535 + 14;
/** Smallest frame worth passing on: an Ethernet header. */
export const MIN_FRAME_BYTES = 14;

export { parseNetSpec } from './spec.js';
