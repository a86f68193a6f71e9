/** Guest RAM allocated by the addon (anonymous mmap, MAP_NORESERVE) and seen from JS without copies. */
import type { NativeGuestRam } from './native.js';

export class GuestRam {
  /** The whole mapping; writes are visible to the guest and vice versa. */
  readonly buffer: ArrayBuffer;
  readonly size: number;
  private bytesView: Uint8Array | undefined;
  private closed = false;

  /** @internal use Kvm.allocateRam */
  constructor(readonly native: NativeGuestRam) {
    this.buffer = native.buffer;
    this.size = native.size;
  }

  /** A Uint8Array over the whole RAM (created on first use). */
  get bytes(): Uint8Array {
    this.bytesView ??= new Uint8Array(this.buffer);
    return this.bytesView;
  }

  /** A view of [offset, offset+length) of this RAM block (offsets relative to the block, not guest addresses). */
  view(offset: number, length: number): Uint8Array {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new RangeError(`GuestRam.view: ${offset}+${length} is outside the ${this.size}-byte block`);
    }
    return new Uint8Array(this.buffer, offset, length);
  }

  get isClosed(): boolean { return this.closed; }

  /**
   * Frees the RAM contents now. Existing views stay valid but read zeros; the address range itself is
   * released when the last view is garbage collected (so no JS view can ever point at unmapped memory).
   * Idempotent.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.close();
  }
}
