/**
 * Bytes the host has sent to the guest that the receiver FIFO has no room for yet. Nothing is ever dropped
 * here: the UART takes bytes out as the guest makes room, so host input is flow-controlled, not overrun.
 */

/** A break condition (line held low for a character time) travels in order with the data. */
export const BREAK = Symbol('break');
export type HostInputItem = number | typeof BREAK;

export class HostInputQueue {
  private chunks: (Uint8Array | typeof BREAK)[] = [];
  private offset = 0; // read position inside chunks[0] when it is a Uint8Array
  private bytes = 0;

  /** Bytes (and breaks) waiting. */
  get length(): number {
    return this.bytes;
  }

  pushBytes(data: Uint8Array): void {
    if (data.length === 0) return;
    this.chunks.push(data);
    this.bytes += data.length;
  }

  pushBreak(): void {
    this.chunks.push(BREAK);
    this.bytes += 1;
  }

  shift(): HostInputItem | undefined {
    const first = this.chunks[0];
    if (first === undefined) return undefined;
    this.bytes--;
    if (first === BREAK) {
      this.chunks.shift();
      return BREAK;
    }
    const byte = first[this.offset++]!;
    if (this.offset >= first.length) {
      this.chunks.shift();
      this.offset = 0;
    }
    return byte;
  }

  clear(): void {
    this.chunks = [];
    this.offset = 0;
    this.bytes = 0;
  }
}
