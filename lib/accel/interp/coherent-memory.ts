/**
 * Guest RAM for the interpreter: plain ArrayBuffers, plus write notification so that device DMA and host-side
 * writes (virtio buffers, the loader on reset) invalidate instructions the CPUs have already decoded from those
 * pages. On KVM the hardware keeps code coherent; here the decoded-instruction cache must be told.
 *
 * `view()` hands out a writable window, so every view counts as a potential write (invalidation is one Map
 * lookup per 4 KiB page, and buffers a device touches are rarely code pages).
 */
import { GuestMemory, type MemoryRegion } from '../../machine/guest-memory.js';

export class CoherentGuestMemory extends GuestMemory {
  /** Called with every physical range a host-side writer may have modified. */
  onWrite: ((address: number, length: number) => void) | undefined;

  constructor(regions: MemoryRegion[]) {
    super(regions);
  }

  override view(address: number, length: number): Uint8Array {
    const v = super.view(address, length);
    this.onWrite?.(address, length);
    return v;
  }

  override read(address: number, length: number): Uint8Array {
    return super.view(address, length).slice();
  }

  override writeU8(a: number, v: number): void { super.writeU8(a, v); this.onWrite?.(a, 1); }
  override writeU16(a: number, v: number): void { super.writeU16(a, v); this.onWrite?.(a, 2); }
  override writeU32(a: number, v: number): void { super.writeU32(a, v); this.onWrite?.(a, 4); }
  override writeU64(a: number, v: bigint): void { super.writeU64(a, v); this.onWrite?.(a, 8); }
}
