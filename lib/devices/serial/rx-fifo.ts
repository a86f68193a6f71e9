/**
 * The receiver FIFO: up to `capacity` characters, each with the line-status error bits (PE/FE/BI) it arrived
 * with. On a 16550 those bits show in LSR while their character is at the top of the FIFO.
 */
export class RxFifo {
  private readonly data = new Uint8Array(16);
  private readonly errors = new Uint8Array(16);
  private head = 0;
  private count = 0;
  private withErrors = 0; // characters in the FIFO whose error bits are non-zero

  /** 16 with FIFOs enabled, 1 in 16450 (character) mode. */
  capacity = 1;

  get length(): number {
    return this.count;
  }

  get full(): boolean {
    return this.count >= this.capacity;
  }

  push(byte: number, errorBits = 0): void {
    if (this.full) throw new Error('RxFifo.push on a full FIFO'); // the UART checks first; this is a bug guard
    const slot = (this.head + this.count) % this.data.length;
    this.data[slot] = byte;
    this.errors[slot] = errorBits;
    if (errorBits !== 0) this.withErrors++;
    this.count++;
  }

  /** Removes and returns the top character; undefined when empty. */
  shift(): number | undefined {
    if (this.count === 0) return undefined;
    const byte = this.data[this.head]!;
    this.clearTopErrors();
    this.head = (this.head + 1) % this.data.length;
    this.count--;
    return byte;
  }

  /** Error bits of the character at the top (0 when empty). */
  topErrors(): number {
    return this.count === 0 ? 0 : this.errors[this.head]!;
  }

  /** Reading LSR reports the top character's errors once. */
  clearTopErrors(): void {
    if (this.count > 0 && this.errors[this.head] !== 0) {
      this.errors[this.head] = 0;
      this.withErrors--;
    }
  }

  /** True when any character in the FIFO carries an error (LSR bit 7). */
  anyErrors(): boolean {
    return this.withErrors > 0;
  }

  clear(): void {
    this.head = 0;
    this.count = 0;
    this.withErrors = 0;
    this.errors.fill(0);
  }
}
